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
from dataclasses import dataclass

__all__ = [
    "MATCH_BUDGET",
    "KeywordPlan",
    "fts_delete",
    "fts_drop",
    "fts_ensure",
    "fts_exists",
    "fts_index_ids",
    "fts_table",
    "plan_keyword_query",
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


# FTS5 scores every document that matches a query with bm25 before it can sort, so an OR
# of words that each occur in thousands of documents costs milliseconds per thousand
# matches; this caps the documents one keyword query may score.
MATCH_BUDGET = 10_000  # WW_KEYWORD_MATCH_BUDGET's default


@dataclass(frozen=True, slots=True)
class KeywordPlan:
    """The MATCH expression to rank, and whether only the newest ``MATCH_BUDGET`` matches
    are ranked (every word is too common to rank all of its documents)."""

    match: str
    newest_only: bool


def _quoted(terms: Sequence[str]) -> str:
    return " OR ".join(f'"{t}"' for t in terms)


def plan_keyword_query(
    conn: sqlite3.Connection, table: str, terms: Sequence[str], budget: int = MATCH_BUDGET
) -> KeywordPlan | None:
    """Pick the words worth ranking within ``budget`` matched documents.

    Rarest words first, as long as their document counts fit the budget: a word found in
    thousands of documents says little that the rarer ones and the dense search do not
    (its idf is low), and ranking it costs the most. The counts stop at ``budget + 1``,
    so even a very common word is counted in bounded time; they are exact below that,
    and the choice depends only on the stored documents (recall stays deterministic).
    When all of a session's matches fit, the query is the plain OR of every word.
    """
    counts: list[tuple[int, int, str]] = []
    for pos, term in enumerate(terms):
        n = conn.execute(
            f"SELECT COUNT(*) FROM (SELECT 1 FROM {table} WHERE {table} MATCH ? LIMIT ?)",
            (f'"{term}"', budget + 1),
        ).fetchone()[0]
        if n:
            counts.append((int(n), pos, term))
    if not counts:
        return None
    counts.sort()
    chosen: list[tuple[int, str]] = []
    total = 0
    for n, pos, term in counts:
        if total + n <= budget:
            chosen.append((pos, term))
            total += n
    if chosen:
        return KeywordPlan(_quoted([t for _, t in sorted(chosen)]), newest_only=False)
    # Every word alone matches more than the budget: rank the newest matches of them all.
    return KeywordPlan(_quoted([t for _, _, t in sorted(counts, key=lambda c: c[1])]), True)
