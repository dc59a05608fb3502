"""``LearningStore`` on the SQLite file the record store uses (tables from migration 2).

It shares the record store's ``SQLiteDatabase`` (writer thread, reader pool) and leaves its
lifecycle to the record store: open and close the record store, not this.
"""

from __future__ import annotations

import json
import sqlite3
from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from uuid import UUID

import numpy as np

from ww.storage.payload import from_micros, to_micros
from ww.storage.ports.learning import (
    CandidateLearning,
    EncoderBlob,
    FeedbackEntry,
    HebbianEdge,
    MemoryState,
    PastRating,
    RecallLogEntry,
)
from ww.storage.sqlite.db import SQLiteDatabase

__all__ = ["SQLiteLearningStore"]

_CHUNK = 400  # ids per statement, under SQLite's variable limit with room for the rest


def _chunks(ids: Sequence[UUID]) -> list[list[str]]:
    keys = [str(i) for i in dict.fromkeys(ids)]
    return [keys[i : i + _CHUNK] for i in range(0, len(keys), _CHUNK)]


def _rows_in(
    c: sqlite3.Connection, sql: str, session_id: str, ids: Sequence[UUID]
) -> Iterator[sqlite3.Row]:
    """``sql`` over ``ids`` in chunks under SQLite's variable limit; its parameters are the
    session, then the chunk's ids where ``{marks}`` stands."""
    for chunk in _chunks(ids):
        marks = ",".join("?" * len(chunk))
        yield from c.execute(sql.format(marks=marks), (session_id, *chunk))


def _states(c: sqlite3.Connection, session_id: str, ids: Sequence[UUID]) -> dict[UUID, MemoryState]:
    times: dict[str, list[datetime]] = defaultdict(list)
    values: dict[str, tuple[float, int]] = {}
    for r in _rows_in(
        c,
        "SELECT memory_id, t FROM memory_access WHERE session_id = ? "
        "AND memory_id IN ({marks}) ORDER BY memory_id, t",
        session_id,
        ids,
    ):
        times[r[0]].append(from_micros(r[1]))
    for r in _rows_in(
        c,
        "SELECT memory_id, value, rewards FROM memory_value WHERE session_id = ? "
        "AND memory_id IN ({marks})",
        session_id,
        ids,
    ):
        values[r[0]] = (float(r[1]), int(r[2]))
    out: dict[UUID, MemoryState] = {}
    for key in times.keys() | values.keys():
        value, rewards = values.get(key, (None, None))
        out[UUID(key)] = MemoryState.stored(value, rewards, times.get(key, ()))
    return out


def _edges(c: sqlite3.Connection, session_id: str, ids: Sequence[UUID]) -> list[HebbianEdge]:
    """Edges with both ends among ``ids``."""
    wanted = {str(i) for i in ids}
    if len(wanted) < 2:
        return []
    out: list[HebbianEdge] = []
    for r in _rows_in(
        c,
        "SELECT a, b, weight, last_strengthened FROM hebbian_edges "
        "WHERE session_id = ? AND a IN ({marks})",
        session_id,
        ids,
    ):
        if r[1] in wanted:
            out.append(HebbianEdge(UUID(r[0]), UUID(r[1]), float(r[2]), from_micros(r[3])))
    return out


def _ratings(
    c: sqlite3.Connection, session_id: str, ids: Sequence[UUID]
) -> dict[UUID, list[PastRating]]:
    """Feedback on ``ids`` whose recall is still in the log, with the recall's query."""
    out: dict[UUID, list[PastRating]] = {}
    for r in _rows_in(
        c,
        "SELECT f.recall_id, f.memory_id, f.reward, f.result, r.query_vector "
        "FROM recall_feedback f JOIN recall_log r ON r.recall_id = f.recall_id "
        "AND r.session_id = f.session_id WHERE f.session_id = ? AND f.memory_id IN ({marks})",
        session_id,
        ids,
    ):
        m = UUID(r[1])
        entry = FeedbackEntry(UUID(r[0]), m, float(r[2]), str(r[3]))
        vector = np.frombuffer(r[4], dtype="<f4").astype(np.float32)
        out.setdefault(m, []).append(PastRating(entry, vector))
    return out


def _encoder_version(c: sqlite3.Connection, session_id: str) -> int:
    row = c.execute(
        "SELECT version FROM ff_encoders WHERE session_id = ?", (session_id,)
    ).fetchone()
    return 0 if row is None else int(row[0])


class SQLiteLearningStore:
    def __init__(self, db: SQLiteDatabase) -> None:
        self.db = db

    # -- recall log ----------------------------------------------------------------------
    async def log_recall(self, entry: RecallLogEntry, forget_before: datetime | None) -> None:
        vector = np.asarray(entry.query_vector, dtype="<f4").tobytes()
        ids = json.dumps([str(i) for i in entry.memory_ids])

        def tx(c: sqlite3.Connection) -> None:
            c.execute(
                "INSERT INTO recall_log(recall_id, session_id, created_at, query_vector, "
                "memory_ids) VALUES (?, ?, ?, ?, ?)",
                (str(entry.recall_id), entry.session_id, to_micros(entry.created_at), vector, ids),
            )
            if forget_before is not None:
                cutoff = to_micros(forget_before)
                c.execute(
                    "DELETE FROM recall_feedback WHERE recall_id IN (SELECT recall_id FROM "
                    "recall_log WHERE session_id = ? AND created_at < ?)",
                    (entry.session_id, cutoff),
                )
                c.execute(
                    "DELETE FROM recall_log WHERE session_id = ? AND created_at < ?",
                    (entry.session_id, cutoff),
                )

        await self.db.write(tx)

    async def get_recall(self, session_id: str, recall_id: UUID) -> RecallLogEntry | None:
        def q(c: sqlite3.Connection) -> RecallLogEntry | None:
            row = c.execute(
                "SELECT created_at, query_vector, memory_ids FROM recall_log "
                "WHERE recall_id = ? AND session_id = ?",
                (str(recall_id), session_id),
            ).fetchone()
            if row is None:
                return None
            return RecallLogEntry(
                recall_id=recall_id,
                session_id=session_id,
                created_at=from_micros(row[0]),
                query_vector=np.frombuffer(row[1], dtype="<f4").astype(np.float32),
                memory_ids=tuple(UUID(i) for i in json.loads(row[2])),
            )

        return await self.db.read(q)

    # -- per-memory state ----------------------------------------------------------------
    async def record_accesses(
        self, session_id: str, ids: Sequence[UUID], now: datetime, keep: int
    ) -> None:
        ts = to_micros(now)
        keys = [str(i) for i in dict.fromkeys(ids)]

        def tx(c: sqlite3.Connection) -> None:
            c.executemany(
                "INSERT INTO memory_access(session_id, memory_id, t) VALUES (?, ?, ?)",
                [(session_id, k, ts) for k in keys],
            )
            # ACT-R sums over every access, but the oldest ones add almost nothing
            # (t^-0.5); capping keeps the table and the sum bounded.
            c.executemany(
                "DELETE FROM memory_access WHERE session_id = ? AND memory_id = ? AND rowid "
                "NOT IN (SELECT rowid FROM memory_access WHERE session_id = ? AND memory_id = ? "
                "ORDER BY t DESC, rowid DESC LIMIT ?)",
                [(session_id, k, session_id, k, keep) for k in keys],
            )

        if keys:
            await self.db.write(tx)

    async def memory_states(self, session_id: str, ids: Sequence[UUID]) -> dict[UUID, MemoryState]:
        return await self.db.read(lambda c: _states(c, session_id, ids)) if ids else {}

    async def set_values(self, session_id: str, values: Mapping[UUID, tuple[float, int]]) -> None:
        rows = [(session_id, str(i), v, n) for i, (v, n) in values.items()]
        if rows:
            await self.db.write(
                lambda c: c.executemany(
                    "INSERT INTO memory_value(session_id, memory_id, value, rewards) "
                    "VALUES (?, ?, ?, ?) ON CONFLICT(session_id, memory_id) DO UPDATE SET "
                    "value = excluded.value, rewards = excluded.rewards",
                    rows,
                )
            )

    async def forget(self, session_id: str, ids: Sequence[UUID]) -> None:
        def tx(c: sqlite3.Connection) -> None:
            for chunk in _chunks(ids):
                marks = ",".join("?" * len(chunk))
                for table, col in (("memory_access", "memory_id"), ("memory_value", "memory_id")):
                    c.execute(
                        f"DELETE FROM {table} WHERE session_id = ? AND {col} IN ({marks})",
                        (session_id, *chunk),
                    )
                c.execute(
                    f"DELETE FROM hebbian_edges WHERE session_id = ? AND (a IN ({marks}) "
                    f"OR b IN ({marks}))",
                    (session_id, *chunk, *chunk),
                )

        if ids:
            await self.db.write(tx)

    # -- Hebbian edges -------------------------------------------------------------------
    async def edges(self, session_id: str, ids: Sequence[UUID]) -> list[HebbianEdge]:
        if len(set(ids)) < 2:  # no edge to read: spare the thread hand-off (_edges checks too)
            return []
        return await self.db.read(lambda c: _edges(c, session_id, ids))

    async def candidate_learning(
        self, session_id: str, ids: Sequence[UUID], *, edges: bool, ratings: bool
    ) -> CandidateLearning:
        def q(c: sqlite3.Connection) -> CandidateLearning:
            return CandidateLearning(
                states=_states(c, session_id, ids),
                edges=_edges(c, session_id, ids) if edges else [],
                encoder_version=_encoder_version(c, session_id),
                ratings=_ratings(c, session_id, ids) if ratings else {},
            )

        return await self.db.read(q)

    async def edges_of(self, session_id: str, memory_id: UUID, limit: int) -> list[HebbianEdge]:
        # Two index lookups (a, then b), not an OR the planner would scan the table for.
        m = str(memory_id)
        return await self.db.read(
            lambda c: [
                HebbianEdge(UUID(r[0]), UUID(r[1]), float(r[2]), from_micros(r[3]))
                for r in c.execute(
                    "SELECT a, b, weight, last_strengthened FROM ("
                    "SELECT a, b, weight, last_strengthened FROM hebbian_edges "
                    "WHERE session_id = ? AND a = ? UNION ALL "
                    "SELECT a, b, weight, last_strengthened FROM hebbian_edges "
                    "WHERE session_id = ? AND b = ?) ORDER BY weight DESC, a, b LIMIT ?",
                    (session_id, m, session_id, m, limit),
                )
            ]
        )

    async def upsert_edges(self, session_id: str, edges: Sequence[HebbianEdge]) -> None:
        rows = []
        for e in edges:
            a, b = HebbianEdge.key(e.a, e.b)
            rows.append((session_id, str(a), str(b), e.weight, to_micros(e.last_strengthened)))
        if rows:
            await self.db.write(
                lambda c: c.executemany(
                    "INSERT INTO hebbian_edges(session_id, a, b, weight, last_strengthened) "
                    "VALUES (?, ?, ?, ?, ?) ON CONFLICT(session_id, a, b) DO UPDATE SET "
                    "weight = excluded.weight, last_strengthened = excluded.last_strengthened",
                    rows,
                )
            )

    async def session_edges(self, session_id: str) -> list[HebbianEdge]:
        return await self.db.read(
            lambda c: [
                HebbianEdge(UUID(r[0]), UUID(r[1]), float(r[2]), from_micros(r[3]))
                for r in c.execute(
                    "SELECT a, b, weight, last_strengthened FROM hebbian_edges "
                    "WHERE session_id = ? ORDER BY a, b",
                    (session_id,),
                )
            ]
        )

    async def delete_edges(self, session_id: str, pairs: Sequence[tuple[UUID, UUID]]) -> None:
        rows = [(session_id, *(str(x) for x in HebbianEdge.key(a, b))) for a, b in pairs]
        if rows:
            await self.db.write(
                lambda c: c.executemany(
                    "DELETE FROM hebbian_edges WHERE session_id = ? AND a = ? AND b = ?", rows
                )
            )

    # -- feedback --------------------------------------------------------------------------
    async def feedback_entries(self, session_id: str, recall_id: UUID) -> dict[UUID, FeedbackEntry]:
        def q(c: sqlite3.Connection) -> dict[UUID, FeedbackEntry]:
            return {
                UUID(r[0]): FeedbackEntry(recall_id, UUID(r[0]), float(r[1]), str(r[2]))
                for r in c.execute(
                    "SELECT memory_id, reward, result FROM recall_feedback "
                    "WHERE recall_id = ? AND session_id = ?",
                    (str(recall_id), session_id),
                )
            }

        return await self.db.read(q)

    async def save_feedback(self, session_id: str, entries: Sequence[FeedbackEntry]) -> int:
        rows = [
            (str(e.recall_id), str(e.memory_id), session_id, e.reward, e.result) for e in entries
        ]

        def tx(c: sqlite3.Connection) -> int:
            before = c.total_changes
            c.executemany(
                "INSERT OR IGNORE INTO recall_feedback(recall_id, memory_id, session_id, "
                "reward, result) VALUES (?, ?, ?, ?, ?)",
                rows,
            )
            return c.total_changes - before

        return await self.db.write(tx) if rows else 0

    # -- FF encoder ----------------------------------------------------------------------
    async def encoder_version(self, session_id: str) -> int:
        return await self.db.read(lambda c: _encoder_version(c, session_id))

    async def load_encoder(self, session_id: str) -> EncoderBlob | None:
        def q(c: sqlite3.Connection) -> EncoderBlob | None:
            row = c.execute(
                "SELECT version, weights FROM ff_encoders WHERE session_id = ?", (session_id,)
            ).fetchone()
            return None if row is None else EncoderBlob(int(row[0]), bytes(row[1]))

        return await self.db.read(q)

    async def save_encoder(self, session_id: str, blob: EncoderBlob, expected_version: int) -> bool:
        def tx(c: sqlite3.Connection) -> bool:
            row = c.execute(
                "SELECT version FROM ff_encoders WHERE session_id = ?", (session_id,)
            ).fetchone()
            if (0 if row is None else int(row[0])) != expected_version:
                return False
            c.execute(
                "INSERT INTO ff_encoders(session_id, version, weights) VALUES (?, ?, ?) "
                "ON CONFLICT(session_id) DO UPDATE SET version = excluded.version, "
                "weights = excluded.weights",
                (session_id, blob.version, blob.weights),
            )
            return True

        return await self.db.write(tx)

    async def delete_session(self, session_id: str) -> None:
        def tx(c: sqlite3.Connection) -> None:
            for table in (
                "recall_log",
                "recall_feedback",
                "memory_access",
                "memory_value",
                "hebbian_edges",
                "ff_encoders",
            ):
                c.execute(f"DELETE FROM {table} WHERE session_id = ?", (session_id,))

        await self.db.write(tx)
