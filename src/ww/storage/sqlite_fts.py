"""Per-session FTS5 keyword indexes for the SQLite record store.

bm25 ranks with collection statistics (how rare a word is, how long documents are). One
index shared by all sessions would let one session's writes move another's keyword scores,
and even which candidates it gets: a side channel across sessions. So each session has its
own FTS5 table, named by a hash of the session id, holding only that session's episodes
(external content: the text itself stays in ``episodes``).
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Sequence

__all__ = [
    "fts_delete",
    "fts_drop",
    "fts_ensure",
    "fts_exists",
    "fts_index_ids",
    "fts_table",
]

_TOKENIZE = "porter unicode61 remove_diacritics 2"


def fts_table(session_id: str) -> str:
    # A hash keeps any valid session id a safe SQL identifier.
    return "fts_" + hashlib.sha256(session_id.encode()).hexdigest()[:32]


def fts_exists(conn: sqlite3.Connection, session_id: str) -> bool:
    row = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (fts_table(session_id),)
    ).fetchone()
    return row is not None


def fts_ensure(conn: sqlite3.Connection, session_id: str) -> str:
    name = fts_table(session_id)
    conn.execute(
        f"CREATE VIRTUAL TABLE IF NOT EXISTS {name} USING fts5("
        f"content, content='episodes', content_rowid='rowid', tokenize='{_TOKENIZE}')"
    )
    return name


def fts_index_ids(conn: sqlite3.Connection, session_id: str, ids: Sequence[str]) -> None:
    """Add the session's episodes with these ids (already in ``episodes``) to its index."""
    name = fts_ensure(conn, session_id)
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        marks = ",".join("?" * len(chunk))
        conn.execute(
            f"INSERT INTO {name} (rowid, content) SELECT rowid, content FROM episodes "
            f"WHERE session_id = ? AND id IN ({marks})",
            (session_id, *chunk),
        )


def fts_delete(conn: sqlite3.Connection, session_id: str, rowid: int, content: str) -> None:
    """Remove one document; FTS5 needs the exact text that was indexed."""
    if fts_exists(conn, session_id):
        name = fts_table(session_id)
        conn.execute(
            f"INSERT INTO {name} ({name}, rowid, content) VALUES ('delete', ?, ?)",
            (rowid, content),
        )


def fts_drop(conn: sqlite3.Connection, session_id: str) -> None:
    conn.execute(f"DROP TABLE IF EXISTS {fts_table(session_id)}")
