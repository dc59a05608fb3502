"""Embedded record store: one SQLite file in WAL mode, with an in-memory keyword index.

Writes run on one dedicated thread and connection (SQLite serialises writers anyway); reads
run on a small pool of threads, each with its own connection. The event loop never waits on
SQLite.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any, TypeVar
from uuid import UUID

from ww.models import Episode, EpisodeFilter, IndexState, MemoryType, SessionStats
from ww.storage.diskspace import DiskGuard
from ww.storage.index_state import IndexStateMarks
from ww.storage.memories import ACCESS_SQL, EpisodePages, access_row
from ww.storage.payload import from_micros, to_micros
from ww.storage.ports import (
    AccessUpdate,
    CandidateRow,
    IdConflictError,
    MemoryCount,
    ScoredId,
)
from ww.storage.query_terms import keyword_terms
from ww.storage.sqlite.db import SQLiteDatabase
from ww.storage.sqlite.keyword_index import DEFAULT_MAX_SESSIONS, KeywordIndex, query_stems
from ww.storage.sqlite.memories import by_ids, indexed_count, row_as
from ww.storage.sqlite.rows import (
    EPISODE_COLUMNS,
    episode_params,
    filter_sql,
    row_to_episode,
)

__all__ = ["SQLiteRecordStore"]

T = TypeVar("T")


# Episodes by id: the session index would scan every row of the session (13 ms -> under
# 1 ms for 200 rows at 10k without it).
_rows_by_id = partial(by_ids, alias="e", session_index=False)


class SQLiteRecordStore(EpisodePages, IndexStateMarks):
    """``RecordStore`` on SQLite. ``path`` may be ``":memory:"`` for throwaway stores.

    ``db`` is shared with the other SQLite stores (entities, skills) of the same file; this
    store owns its lifecycle. Episodes' keyword search runs on ``keywords``, which follows
    every committed change to an episode's text.
    """

    def __init__(
        self,
        path: Path | str,
        *,
        readers: int | None = None,
        disk: DiskGuard | None = None,
        keyword_sessions: int = DEFAULT_MAX_SESSIONS,
    ) -> None:
        self.db = SQLiteDatabase(path, readers=readers, disk=disk)
        self.keywords = KeywordIndex(keyword_sessions)
        self._run = self.db.read
        self._write = self.db.write

    async def open(self) -> None:
        await self.db.open()

    async def close(self) -> None:
        await self.db.close()

    async def check(self) -> None:
        await self._run(lambda c: c.execute("SELECT 1").fetchone())

    # -- meta -------------------------------------------------------------------------------
    async def get_meta(self, key: str) -> str | None:
        def q(c: sqlite3.Connection) -> str | None:
            row = c.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
            return None if row is None else str(row[0])

        return await self._run(q)

    async def set_meta(self, key: str, value: str) -> None:
        await self._write(
            lambda c: c.execute(
                "INSERT INTO meta(key, value) VALUES (?, ?) "
                "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                (key, value),
            )
        )

    # -- sessions ---------------------------------------------------------------------------
    async def ensure_session(self, session_id: str, now: datetime) -> None:
        ts = to_micros(now)

        await self._write(
            lambda c: c.execute(
                "INSERT INTO sessions(session_id, created_at, last_activity) VALUES (?, ?, ?) "
                "ON CONFLICT(session_id) DO UPDATE SET last_activity = excluded.last_activity",
                (session_id, ts, ts),
            )
        )

    async def warm(self) -> int:
        # Most recently written first: those are the sessions a recall is likeliest to ask.
        sessions = await self._run(
            lambda c: [
                r[0]
                for r in c.execute(
                    "SELECT session_id FROM episodes GROUP BY session_id ORDER BY MAX(rowid) DESC"
                )
            ]
        )
        warmed = 0
        for session_id in sessions[: self.keywords.max_sessions]:
            warmed += await self._run(partial(self._warm_one, session_id))
        return warmed

    def _warm_one(self, session_id: str, c: sqlite3.Connection) -> bool:
        return self.keywords.warm(session_id, lambda: _session_texts(c, session_id))

    async def list_sessions(self) -> list[str]:
        return await self._run(
            lambda c: [
                r[0] for r in c.execute("SELECT session_id FROM sessions ORDER BY session_id")
            ]
        )

    async def session_stats(self, session_id: str) -> SessionStats | None:
        def q(c: sqlite3.Connection) -> SessionStats | None:
            rows = c.execute(_STATS.format(where="session_id = ?"), (session_id, 1)).fetchall()
            return _stats(rows[0]) if rows else None

        return await self._run(q)

    async def session_stats_page(self, limit: int, after: str | None) -> list[SessionStats]:
        where = "session_id > ?" if after is not None else "? IS NULL"
        return await self._run(
            lambda c: [
                _stats(r) for r in c.execute(_STATS.format(where=where), (after, limit)).fetchall()
            ]
        )

    async def memory_counts(self) -> dict[MemoryType, MemoryCount]:
        def q(c: sqlite3.Connection) -> dict[MemoryType, MemoryCount]:
            return {
                kind: MemoryCount(*c.execute(_COUNTS.format(table=table)).fetchone())
                for kind, table in _TABLES.items()
            }

        return await self._run(q)

    async def delete_session(self, session_id: str) -> int:
        def tx(c: sqlite3.Connection) -> int:
            n = c.execute("DELETE FROM episodes WHERE session_id = ?", (session_id,)).rowcount
            c.execute("DELETE FROM sessions WHERE session_id = ?", (session_id,))
            return int(n)

        return await self._write(tx, lambda _: self.keywords.drop(session_id))

    # -- episodes ---------------------------------------------------------------------------
    async def insert_episodes(self, session_id: str, episodes: Sequence[Episode]) -> None:
        _check_session(session_id, episodes)
        if not episodes:
            return
        rows = [episode_params(ep) for ep in episodes]
        marks = ", ".join("?" * len(rows[0]))
        ids = [ep.id for ep in episodes]

        def tx(c: sqlite3.Connection) -> tuple[list[tuple[int, str]], bool]:
            new = _no_episodes(c, session_id)
            try:
                c.executemany(f"INSERT INTO episodes({EPISODE_COLUMNS}) VALUES ({marks})", rows)
            except sqlite3.IntegrityError as exc:  # the only unique key is the id
                raise IdConflictError(f"an episode id is already taken: {exc}") from exc
            added = _rows_by_id(c, "SELECT e.rowid, e.content FROM episodes e", session_id, ids)
            return [(r[0], r[1]) for r in added], new

        await self._write(tx, partial(self._follow, session_id))

    def _follow(self, session_id: str, written: tuple[list[tuple[int, str]], bool]) -> None:
        """The keyword index follows committed inserts; a session's first ones start it."""
        added, new = written
        self.keywords.apply(session_id, put=added, new_session=new)

    async def insert_new_external(
        self, session_id: str, episodes: Sequence[Episode], *, all_or_nothing: bool
    ) -> dict[str, UUID]:
        _check_session(session_id, episodes)
        wanted = sorted({ep.external_id for ep in episodes if ep.external_id is not None})
        if not episodes:
            return {}

        # The check and the insert share one transaction on the one writer connection, so
        # no other write of the session can come between them.
        def tx(c: sqlite3.Connection) -> tuple[dict[str, UUID], tuple[list[tuple[int, str]], bool]]:
            new = _no_episodes(c, session_id)
            known: dict[str, UUID] = {}
            for i in range(0, len(wanted), 400):
                chunk = wanted[i : i + 400]
                for ext, eid in c.execute(
                    "SELECT external_id, id FROM episodes WHERE session_id = ? AND external_id "
                    f"IN ({','.join('?' * len(chunk))}) ORDER BY rowid",
                    (session_id, *chunk),
                ):
                    known.setdefault(ext, UUID(eid))  # the oldest one stands for them all
            fresh = [ep for ep in episodes if ep.external_id not in known]
            if (known and all_or_nothing) or not fresh:
                return known, ([], False)
            rows = [episode_params(ep) for ep in fresh]
            marks = ", ".join("?" * len(rows[0]))
            try:
                c.executemany(f"INSERT INTO episodes({EPISODE_COLUMNS}) VALUES ({marks})", rows)
            except sqlite3.IntegrityError as exc:
                raise IdConflictError(f"an episode id is already taken: {exc}") from exc
            ids = [ep.id for ep in fresh]
            added = _rows_by_id(c, "SELECT e.rowid, e.content FROM episodes e", session_id, ids)
            return known, ([(r[0], r[1]) for r in added], new)

        known, _ = await self._write(tx, lambda result: self._follow(session_id, result[1]))
        return known

    async def get_episode(self, session_id: str, episode_id: UUID) -> Episode | None:
        return await self._run(
            row_as(
                row_to_episode,
                f"SELECT {EPISODE_COLUMNS} FROM episodes WHERE id = ? AND session_id = ?",
                str(episode_id),
                session_id,
            )
        )

    async def get_episodes(self, session_id: str, ids: Sequence[UUID]) -> dict[UUID, Episode]:
        def q(c: sqlite3.Connection) -> dict[UUID, Episode]:
            select = f"SELECT {EPISODE_COLUMNS} FROM episodes e"
            episodes = (row_to_episode(r) for r in _rows_by_id(c, select, session_id, ids))
            return {ep.id: ep for ep in episodes}

        return await self._run(q) if ids else {}

    async def _episode_page(
        self, session_id: str, flt: EpisodeFilter, n: int, after: tuple[int, str] | None
    ) -> list[Episode]:
        where, params = filter_sql(flt)
        if after is not None:
            ts, ident = after
            where += " AND (e.timestamp < ? OR (e.timestamp = ? AND e.id < ?))"
            params += [ts, ts, ident]

        def q(c: sqlite3.Connection) -> list[Episode]:
            rows = c.execute(
                f"SELECT {EPISODE_COLUMNS} FROM episodes e WHERE e.session_id = ? AND {where} "
                "ORDER BY e.timestamp DESC, e.id DESC LIMIT ?",
                (session_id, *params, n),
            ).fetchall()
            return [row_to_episode(r) for r in rows]

        return await self._run(q)

    async def update_episode(self, session_id: str, episode: Episode) -> bool:
        if episode.session_id != session_id:
            raise ValueError("episode belongs to another session")
        params = episode_params(episode)
        columns = [c.strip() for c in EPISODE_COLUMNS.split(",")][2:]
        assignments = ", ".join(f"{col} = ?" for col in columns)

        def tx(c: sqlite3.Connection) -> tuple[int, str] | None:
            old = c.execute(
                "SELECT rowid, content FROM episodes WHERE id = ? AND session_id = ?",
                (str(episode.id), session_id),
            ).fetchone()
            if old is None:
                return None
            c.execute(f"UPDATE episodes SET {assignments} WHERE rowid = ?", (*params[2:], old[0]))
            return int(old[0]), str(old[1])

        def reindex(old: tuple[int, str] | None) -> None:
            if old is not None and old[1] != episode.content:
                self.keywords.apply(session_id, put=[(old[0], episode.content)])

        return await self._write(tx, reindex) is not None

    async def delete_episode(self, session_id: str, episode_id: UUID) -> bool:
        def tx(c: sqlite3.Connection) -> int | None:
            row = c.execute(
                "DELETE FROM episodes WHERE id = ? AND session_id = ? RETURNING rowid",
                (str(episode_id), session_id),
            ).fetchone()
            return None if row is None else int(row[0])

        def unindex(rowid: int | None) -> None:
            if rowid is not None:
                self.keywords.apply(session_id, remove=[rowid])

        return await self._write(tx, unindex) is not None

    async def _set_index_state(
        self, session_id: str, ids: Sequence[UUID], state: IndexState
    ) -> None:
        rows = [(state.value, session_id, str(i)) for i in ids]
        await self._write(
            lambda c: c.executemany(
                "UPDATE episodes SET index_state = ? WHERE session_id = ? AND id = ?", rows
            )
        )

    async def indexed_ids(self, session_id: str) -> set[UUID]:
        return await self._run(
            lambda c: {
                UUID(r[0])
                for r in c.execute(
                    "SELECT id FROM episodes WHERE session_id = ? AND index_state = 'indexed'",
                    (session_id,),
                )
            }
        )

    async def indexed_count(self, session_id: str) -> int:
        # Every row less the pending ones: both counts walk an index (the pending one is
        # partial), where counting 'indexed' rows would read each row.
        return await self._run(lambda c: indexed_count(c, "episodes", session_id))

    async def pending_episodes(
        self, session_id: str, limit: int, ingested_before: datetime | None = None
    ) -> list[Episode]:
        cutoff = to_micros(ingested_before) if ingested_before is not None else 2**63 - 1
        return await self._run(
            lambda c: [
                row_to_episode(r)
                for r in c.execute(
                    f"SELECT {EPISODE_COLUMNS} FROM episodes WHERE session_id = ? "
                    "AND index_state = 'pending' AND ingested_at < ? LIMIT ?",
                    (session_id, cutoff, limit),
                )
            ]
        )

    async def existing_ids(self, session_id: str, ids: Sequence[UUID]) -> set[UUID]:
        def q(c: sqlite3.Connection) -> set[UUID]:
            return {
                UUID(r[0]) for r in _rows_by_id(c, "SELECT e.id FROM episodes e", session_id, ids)
            }

        return await self._run(q)

    async def keyword_search(
        self, session_id: str, query: str, flt: EpisodeFilter, limit: int
    ) -> list[ScoredId]:
        stems = query_stems(keyword_terms(query))
        if not stems or limit <= 0:
            return []
        where, params = filter_sql(flt)

        def q(c: sqlite3.Connection) -> list[ScoredId]:
            # The index ranks; SQLite applies the filters (archived ones are excluded by
            # default) and names the ids. Twice the page usually survives them; only when it
            # does not is every match ranked and checked, in rank order. (The unary + keeps
            # SQLite on rowid lookups instead of scanning the session's index.)
            fetch = limit * 2
            while True:
                rowids, scores = self.keywords.search(
                    session_id, stems, fetch, lambda: _session_texts(c, session_id)
                )
                out: list[ScoredId] = []
                for start in range(0, len(rowids), 500):
                    chunk = rowids[start : start + 500].tolist()
                    marks = ",".join("?" * len(chunk))
                    ids = dict(
                        c.execute(
                            f"SELECT e.rowid, e.id FROM episodes e WHERE e.rowid IN ({marks}) "
                            f"AND +e.session_id = ? AND {where}",
                            (*chunk, session_id, *params),
                        ).fetchall()
                    )
                    for rowid, score in zip(
                        chunk, scores[start : start + 500].tolist(), strict=True
                    ):
                        if rowid in ids:
                            out.append(ScoredId(UUID(ids[rowid]), score))
                            if len(out) == limit:
                                return out
                if len(rowids) < fetch:
                    return out
                fetch = 2**62  # every match

        return await self._run(q)

    async def candidate_rows(
        self, session_id: str, ids: Sequence[UUID], flt: EpisodeFilter
    ) -> dict[UUID, CandidateRow]:
        where, params = filter_sql(flt)
        select = (
            "SELECT e.id, e.timestamp, e.importance, e.speaker, e.stability, e.last_review "
            "FROM episodes e"
        )

        def q(c: sqlite3.Connection) -> dict[UUID, CandidateRow]:
            out: dict[UUID, CandidateRow] = {}
            for r in _rows_by_id(c, select, session_id, ids, where, params):
                ident = UUID(r[0])
                out[ident] = CandidateRow(ident, r[1], r[2], r[3], r[4], r[5])
            return out

        return await self._run(q)

    async def neighbours(
        self, session_id: str, rows: Sequence[CandidateRow]
    ) -> dict[UUID, tuple[UUID, ...]]:
        keys = [(str(r.id), r.timestamp_us) for r in rows]

        def q(c: sqlite3.Connection) -> dict[UUID, tuple[UUID, ...]]:
            out: dict[UUID, tuple[UUID, ...]] = {}
            # One statement per chunk: the two lookups per episode run inside SQLite instead
            # of as two round trips each. Row values let SQLite walk ix_episodes_session_time
            # as a range in both directions; the equivalent OR form scans.
            for start in range(0, len(keys), 400):
                chunk = keys[start : start + 400]
                values = ",".join("(?, ?)" for _ in chunk)
                sess = f"?{2 * len(chunk) + 1}"  # numbered after the VALUES placeholders
                sql = (
                    f"WITH k(id, ts) AS (VALUES {values}) SELECT k.id, "
                    f"(SELECT e.id FROM episodes e WHERE e.session_id = {sess} "
                    "AND (e.timestamp, e.id) < (k.ts, k.id) "
                    "ORDER BY e.timestamp DESC, e.id DESC LIMIT 1), "
                    f"(SELECT e.id FROM episodes e WHERE e.session_id = {sess} "
                    "AND (e.timestamp, e.id) > (k.ts, k.id) "
                    "ORDER BY e.timestamp ASC, e.id ASC LIMIT 1) FROM k"
                )
                params = [v for ident, ts in chunk for v in (ident, ts)]
                for ident, before, after in c.execute(sql, (*params, session_id)):
                    near = (before, after)
                    out[UUID(ident)] = tuple(UUID(x) for x in near if x is not None)
            return out

        return await self._run(q)

    async def record_access(self, session_id: str, updates: Sequence[AccessUpdate]) -> None:
        rows = [{**access_row(u), "sid": session_id} for u in updates]
        sql = f"UPDATE episodes SET {ACCESS_SQL} WHERE id = :id AND session_id = :sid"
        await self._write(lambda c: c.executemany(sql, rows))


def _no_episodes(c: sqlite3.Connection, session_id: str) -> bool:
    """Whether the session has no episode yet (one step down its index)."""
    row = c.execute("SELECT 1 FROM episodes WHERE session_id = ? LIMIT 1", (session_id,))
    return row.fetchone() is None


def _check_session(session_id: str, episodes: Sequence[Episode]) -> None:
    if any(ep.session_id != session_id for ep in episodes):
        raise ValueError("episode belongs to another session")


# A page of sessions with the counts of every kind of memory in one statement: the counts are
# aggregated for the page's sessions only, through each table's (session_id, ...) index.
_STATS = """
    WITH page AS (
        SELECT session_id, created_at, last_activity FROM sessions
        WHERE {where} ORDER BY session_id LIMIT ?
    ),
    ep AS (
        SELECT session_id, COUNT(*) AS n, SUM(archived) AS archived,
               SUM(index_state = 'pending') AS pending, SUM(LENGTH(content)) AS chars
        FROM episodes WHERE session_id IN (SELECT session_id FROM page) GROUP BY session_id
    )
    SELECT p.session_id, p.created_at, p.last_activity,
           COALESCE(ep.n, 0), COALESCE(ep.archived, 0), COALESCE(ep.pending, 0),
           (SELECT COUNT(*) FROM entities x WHERE x.session_id = p.session_id),
           (SELECT COUNT(*) FROM skills k WHERE k.session_id = p.session_id),
           COALESCE(ep.chars, 0)
    FROM page p LEFT JOIN ep ON ep.session_id = p.session_id
    ORDER BY p.session_id
"""


_TABLES = {
    MemoryType.EPISODE: "episodes",
    MemoryType.ENTITY: "entities",
    MemoryType.SKILL: "skills",
}
# The pending count walks the table's partial index of pending rows, which holds only them.
_COUNTS = (
    "SELECT (SELECT COUNT(*) FROM {table}), "
    "(SELECT COUNT(*) FROM {table} WHERE index_state = 'pending')"
)


def _stats(r: Sequence[Any]) -> SessionStats:
    return SessionStats(
        session_id=r[0],
        created_at=from_micros(r[1]),
        last_activity=from_micros(r[2]) if r[2] is not None else None,
        episodes=r[3],
        archived=r[4],
        pending=r[5],
        entities=r[6],
        skills=r[7],
        content_chars=r[8],
    )


def _session_texts(c: sqlite3.Connection, session_id: str) -> list[tuple[int, str]]:
    """The session's (rowid, content) pairs, which its keyword index is built from."""
    return c.execute(
        "SELECT rowid, content FROM episodes WHERE session_id = ?", (session_id,)
    ).fetchall()
