"""Per-session keyword indexes for entities and skills, and the capped access-time log.

Each session has its own FTS5 table per kind (as episodes have their own index) so one
session's writes never move another's bm25 scores. These tables keep their own copy of the
text (rowid = the record's rowid): the indexed text joins several columns, which an
external-content table cannot express.
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Mapping, Sequence
from datetime import datetime
from uuid import UUID

from ww.storage.payload import from_micros, to_micros
from ww.storage.ports.entities import ACCESS_LOG_CAP
from ww.storage.query_terms import keyword_terms

__all__ = [
    "access_times",
    "append_access",
    "kind_fts_delete",
    "kind_fts_drop",
    "kind_fts_put",
    "kind_fts_search",
    "kind_fts_table",
    "replace_access",
]

_TOKENIZE = "porter unicode61 remove_diacritics 2"


def kind_fts_table(kind: str, session_id: str) -> str:
    # A hash keeps any valid session id a safe SQL identifier.
    return f"fts_{kind}_" + hashlib.sha256(session_id.encode()).hexdigest()[:32]


def _exists(conn: sqlite3.Connection, name: str) -> bool:
    row = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,)
    ).fetchone()
    return row is not None


def kind_fts_put(
    conn: sqlite3.Connection, kind: str, session_id: str, rowid: int, text: str
) -> None:
    """Index (or re-index) one record's text."""
    name = kind_fts_table(kind, session_id)
    conn.execute(
        f"CREATE VIRTUAL TABLE IF NOT EXISTS {name} USING fts5(text, tokenize='{_TOKENIZE}')"
    )
    conn.execute(f"DELETE FROM {name} WHERE rowid = ?", (rowid,))
    conn.execute(f"INSERT INTO {name} (rowid, text) VALUES (?, ?)", (rowid, text))


def kind_fts_delete(conn: sqlite3.Connection, kind: str, session_id: str, rowid: int) -> None:
    name = kind_fts_table(kind, session_id)
    if _exists(conn, name):
        conn.execute(f"DELETE FROM {name} WHERE rowid = ?", (rowid,))


def kind_fts_drop(conn: sqlite3.Connection, kind: str, session_id: str) -> None:
    conn.execute(f"DROP TABLE IF EXISTS {kind_fts_table(kind, session_id)}")


def kind_fts_search(
    conn: sqlite3.Connection,
    kind: str,
    session_id: str,
    query: str,
    table: str,
    where: str,
    params: Sequence[object],
    limit: int,
) -> list[tuple[UUID, float]]:
    """bm25 matches joined to ``table`` (alias ``r``) under ``where``; best first, positive.

    Entities and skills are far fewer than episodes, so the filter joins the full match
    rather than taking the episode store's rank-first fast path.
    """
    terms = keyword_terms(query)
    name = kind_fts_table(kind, session_id)
    if not terms or not _exists(conn, name):
        return []
    match = " OR ".join(f'"{t}"' for t in terms)
    rows = conn.execute(
        f"SELECT r.id, bm25({name}) AS rank FROM {name} JOIN {table} r ON r.rowid = {name}.rowid "
        f"WHERE {name} MATCH ? AND r.session_id = ? AND {where} ORDER BY rank, r.id LIMIT ?",
        (match, session_id, *params, limit),
    ).fetchall()
    # FTS5's bm25() is negative, smaller is better.
    return [(UUID(r[0]), -float(r[1])) for r in rows]


def append_access(
    conn: sqlite3.Connection, session_id: str, ids: Sequence[UUID], at: datetime
) -> None:
    """Record an access of each id, keeping only the newest ``ACCESS_LOG_CAP`` per id."""
    ts = to_micros(at)
    for ident in ids:
        key = str(ident)
        conn.execute(
            "INSERT INTO access_log (session_id, memory_id, at) VALUES (?, ?, ?)",
            (session_id, key, ts),
        )
        conn.execute(
            "DELETE FROM access_log WHERE memory_id = ? AND rowid NOT IN "
            "(SELECT rowid FROM access_log WHERE memory_id = ? ORDER BY at DESC, rowid DESC "
            "LIMIT ?)",
            (key, key, ACCESS_LOG_CAP),
        )


def access_times(
    conn: sqlite3.Connection, session_id: str, ids: Sequence[UUID]
) -> dict[UUID, list[datetime]]:
    out: dict[UUID, list[datetime]] = {}
    for ident in dict.fromkeys(ids):
        rows = conn.execute(
            "SELECT at FROM access_log WHERE memory_id = ? AND session_id = ? "
            "ORDER BY at DESC LIMIT ?",
            (str(ident), session_id, ACCESS_LOG_CAP),
        ).fetchall()
        out[ident] = [from_micros(r[0]) for r in rows]
    return out


def replace_access(
    conn: sqlite3.Connection,
    session_id: str,
    table: str,
    times: Mapping[UUID, Sequence[datetime]],
) -> None:
    """Set each id's access times to exactly ``times[id]`` (newest ``ACCESS_LOG_CAP``), for
    the ids that are rows of ``table`` in the session (an import restoring a copy)."""
    for ident, ats in times.items():
        key = str(ident)
        found = conn.execute(
            f"SELECT 1 FROM {table} WHERE id = ? AND session_id = ?", (key, session_id)
        ).fetchone()
        if found is None:
            continue
        conn.execute(
            "DELETE FROM access_log WHERE memory_id = ? AND session_id = ?", (key, session_id)
        )
        newest = sorted((to_micros(t) for t in ats), reverse=True)[:ACCESS_LOG_CAP]
        conn.executemany(
            "INSERT INTO access_log (session_id, memory_id, at) VALUES (?, ?, ?)",
            [(session_id, key, ts) for ts in newest],
        )
