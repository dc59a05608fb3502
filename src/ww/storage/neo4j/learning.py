"""``LearningStore`` on the Neo4j record store's database.

Nodes, all carrying ``session_id``: ``:WwRecall`` (the recall log; the query vector as
little-endian float32 bytes, the ids as a list), ``:WwFeedback`` (key ``recall/memory``),
``:WwMemState`` (key ``session/memory``: access times oldest first, value, rewards),
``:WwHebbian`` (key ``session/a/b`` with ``a < b``) and ``:WwEncoder`` (one per session).
The unique ``key`` constraints (neo4j/schema.py) make the ``MERGE`` upserts safe against a
concurrent writer.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

import numpy as np
from neo4j import AsyncManagedTransaction

from ww.storage.neo4j.driver import id_keys, listed, row_maps, tx_consume, tx_single
from ww.storage.neo4j.records import Neo4jRecordStore
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

__all__ = ["Neo4jLearningStore"]

_LABELS = ("WwRecall", "WwFeedback", "WwMemState", "WwHebbian", "WwEncoder")
# The states of the memories keyed ``$keys`` (``_state_key``) and the edges with both ends
# among ``$ids``, and the columns of each that its reader takes (``_state``, ``_edge``).
_STATES_MATCH = "UNWIND $keys AS k MATCH (m:WwMemState {key: k}) WHERE m.session_id = $sid"
_STATE = {"id": "m.memory_id", "times": "m.times", "value": "m.value", "rewards": "m.rewards"}
_EDGES_MATCH = "UNWIND $ids AS i MATCH (h:WwHebbian {session_id: $sid, a: i}) WHERE h.b IN $ids"
_EDGE = {"a": "h.a", "b": "h.b", "w": "h.weight", "at": "h.last_strengthened"}
# The feedback on the memories ``$rated`` whose recall is still logged, with its query.
_RATINGS_MATCH = (
    "UNWIND $rated AS i MATCH (f:WwFeedback {session_id: $sid, memory_id: i}) "
    "MATCH (r:WwRecall {recall_id: f.recall_id}) WHERE r.session_id = $sid"
)
_RATING = {
    "recall": "f.recall_id",
    "id": "f.memory_id",
    "reward": "f.reward",
    "result": "f.result",
    "vec": "r.query_vector",
}
# All three, and the session's encoder version, as one read: one round trip for a recall.
_CANDIDATES = (
    f"CALL () {{ {_STATES_MATCH} RETURN {row_maps(**_STATE)} AS states }} "
    f"CALL () {{ {_EDGES_MATCH} RETURN {row_maps(**_EDGE)} AS edges }} "
    f"CALL () {{ {_RATINGS_MATCH} RETURN {row_maps(**_RATING)} AS ratings }} "
    "OPTIONAL MATCH (x:WwEncoder {session_id: $sid}) "
    "RETURN states, edges, ratings, coalesce(x.version, 0) AS version"
)


def _state(r: dict[str, Any]) -> tuple[UUID, MemoryState]:
    times = (from_micros(t) for t in r["times"] or [])
    return UUID(r["id"]), MemoryState.stored(r["value"], r["rewards"], times)


def _edge(r: dict[str, Any]) -> HebbianEdge:
    return HebbianEdge(UUID(r["a"]), UUID(r["b"]), float(r["w"]), from_micros(r["at"]))


def _ratings(rows: Sequence[dict[str, Any]]) -> dict[UUID, list[PastRating]]:
    out: dict[UUID, list[PastRating]] = {}
    for r in rows:
        m = UUID(r["id"])
        entry = FeedbackEntry(UUID(r["recall"]), m, float(r["reward"]), str(r["result"]))
        vector = np.frombuffer(bytes(r["vec"]), dtype="<f4").astype(np.float32)
        out.setdefault(m, []).append(PastRating(entry, vector))
    return out


def _state_key(session_id: str, memory_id: str) -> str:
    return f"{session_id}/{memory_id}"


class Neo4jLearningStore:
    """Shares ``db`` (its driver) with the record store, which owns open/close."""

    def __init__(self, db: Neo4jRecordStore) -> None:
        self.db = db

    # -- recall log ----------------------------------------------------------------------
    async def log_recall(self, entry: RecallLogEntry, forget_before: datetime | None) -> None:
        row = {
            "recall_id": str(entry.recall_id),
            "session_id": entry.session_id,
            "created_at": to_micros(entry.created_at),
            "query_vector": np.asarray(entry.query_vector, dtype="<f4").tobytes(),
            "memory_ids": [str(i) for i in entry.memory_ids],
        }

        async def tx(t: AsyncManagedTransaction) -> None:
            result = await t.run("CREATE (r:WwRecall) SET r = $row", {"row": row})
            await result.consume()
            if forget_before is None:
                return
            result = await t.run(
                "MATCH (r:WwRecall) WHERE r.session_id = $sid AND r.created_at < $cutoff "
                "OPTIONAL MATCH (f:WwFeedback {recall_id: r.recall_id}) "
                "WHERE f.session_id = $sid DETACH DELETE f, r",
                {"sid": entry.session_id, "cutoff": to_micros(forget_before)},
            )
            await result.consume()

        await self.db.write(tx)

    async def get_recall(self, session_id: str, recall_id: UUID) -> RecallLogEntry | None:
        rows = await self.db.rows(
            "MATCH (r:WwRecall {recall_id: $id}) WHERE r.session_id = $sid "
            "RETURN r.created_at AS at, r.query_vector AS vec, r.memory_ids AS ids",
            {"id": str(recall_id), "sid": session_id},
        )
        if not rows:
            return None
        r = rows[0]
        return RecallLogEntry(
            recall_id=recall_id,
            session_id=session_id,
            created_at=from_micros(r["at"]),
            query_vector=np.frombuffer(bytes(r["vec"]), dtype="<f4").astype(np.float32),
            memory_ids=tuple(UUID(i) for i in r["ids"]),
        )

    # -- per-memory state ----------------------------------------------------------------
    async def record_accesses(
        self, session_id: str, ids: Sequence[UUID], now: datetime, keep: int
    ) -> None:
        keys = sorted(id_keys(ids))
        if not keys:
            return
        # ACT-R sums over every access, but the oldest ones add almost nothing (t^-0.5);
        # capping keeps the list and the sum bounded.
        await self.db.write(
            tx_consume(
                "UNWIND $rows AS row MERGE (m:WwMemState {key: row.key}) "
                "ON CREATE SET m.session_id = $sid, m.memory_id = row.id "
                "WITH m CALL (m) { UNWIND coalesce(m.times, []) + [$ts] AS t "
                "WITH t ORDER BY t DESC LIMIT $keep WITH t ORDER BY t RETURN collect(t) AS ts } "
                "SET m.times = ts",
                {
                    "rows": [{"key": _state_key(session_id, k), "id": k} for k in keys],
                    "sid": session_id,
                    "ts": to_micros(now),
                    "keep": keep,
                },
            )
        )

    async def memory_states(self, session_id: str, ids: Sequence[UUID]) -> dict[UUID, MemoryState]:
        keys = id_keys(ids)
        if not keys:
            return {}
        rows = await self.db.listed_rows(
            f"{_STATES_MATCH} {listed(**_STATE)}",
            {"keys": [_state_key(session_id, k) for k in keys], "sid": session_id},
        )
        return dict(_state(r) for r in rows)

    async def set_values(self, session_id: str, values: Mapping[UUID, tuple[float, int]]) -> None:
        rows = [
            {"key": _state_key(session_id, str(i)), "id": str(i), "value": v, "rewards": n}
            for i, (v, n) in sorted(values.items(), key=lambda x: str(x[0]))
        ]
        if rows:
            await self.db.write(
                tx_consume(
                    "UNWIND $rows AS row MERGE (m:WwMemState {key: row.key}) "
                    "ON CREATE SET m.session_id = $sid, m.memory_id = row.id "
                    "SET m.value = row.value, m.rewards = row.rewards",
                    {"rows": rows, "sid": session_id},
                )
            )

    async def forget(self, session_id: str, ids: Sequence[UUID]) -> None:
        keys = id_keys(ids)
        if not keys:
            return

        async def tx(t: AsyncManagedTransaction) -> None:
            params = {"ids": keys, "sid": session_id}
            for query in (
                "UNWIND $ids AS i MATCH (m:WwMemState {key: $sid + '/' + i}) "
                "WHERE m.session_id = $sid DELETE m",
                "UNWIND $ids AS i MATCH (h:WwHebbian {session_id: $sid, a: i}) DELETE h",
                "UNWIND $ids AS i MATCH (h:WwHebbian {session_id: $sid, b: i}) DELETE h",
            ):
                result = await t.run(query, params)
                await result.consume()

        await self.db.write(tx)

    # -- Hebbian edges -------------------------------------------------------------------
    async def edges(self, session_id: str, ids: Sequence[UUID]) -> list[HebbianEdge]:
        keys = id_keys(ids)
        if len(keys) < 2:
            return []
        query = f"{_EDGES_MATCH} {listed(**_EDGE)}"
        rows = await self.db.listed_rows(query, {"ids": keys, "sid": session_id})
        return [_edge(r) for r in rows]

    async def candidate_learning(
        self, session_id: str, ids: Sequence[UUID], *, edges: bool, ratings: bool
    ) -> CandidateLearning:
        keys = id_keys(ids)
        row = await self.db.read(
            tx_single(
                _CANDIDATES,
                {
                    "keys": [_state_key(session_id, k) for k in keys],
                    # An edge needs two ends: fewer ids (or no edges wanted) read none.
                    "ids": keys if edges and len(keys) > 1 else [],
                    "rated": keys if ratings else [],
                    "sid": session_id,
                },
            )
        )
        return CandidateLearning(
            states=dict(_state(r) for r in row["states"]),
            edges=[_edge(r) for r in row["edges"]],
            encoder_version=int(row["version"]),
            ratings=_ratings(row["ratings"]),
        )

    async def edges_of(self, session_id: str, memory_id: UUID, limit: int) -> list[HebbianEdge]:
        rows = await self.db.rows(
            "CALL { MATCH (h:WwHebbian {session_id: $sid, a: $m}) RETURN h "
            "UNION MATCH (h:WwHebbian {session_id: $sid, b: $m}) RETURN h } "
            "RETURN h.a AS a, h.b AS b, h.weight AS w, h.last_strengthened AS at "
            "ORDER BY w DESC, a, b LIMIT $limit",
            {"sid": session_id, "m": str(memory_id), "limit": limit},
        )
        return [_edge(r) for r in rows]

    async def session_edges(self, session_id: str) -> list[HebbianEdge]:
        rows = await self.db.rows(
            "MATCH (h:WwHebbian {session_id: $sid}) "
            "RETURN h.a AS a, h.b AS b, h.weight AS w, h.last_strengthened AS at "
            "ORDER BY a, b",
            {"sid": session_id},
        )
        return [_edge(r) for r in rows]

    async def delete_edges(self, session_id: str, pairs: Sequence[tuple[UUID, UUID]]) -> None:
        keys = sorted(
            {
                "{}/{}/{}".format(session_id, *(str(x) for x in HebbianEdge.key(a, b)))
                for a, b in pairs
            }
        )
        if keys:
            await self.db.write(
                tx_consume(
                    "UNWIND $keys AS k MATCH (h:WwHebbian {key: k}) "
                    "WHERE h.session_id = $sid DELETE h",
                    {"keys": keys, "sid": session_id},
                )
            )

    async def upsert_edges(self, session_id: str, edges: Sequence[HebbianEdge]) -> None:
        rows = []
        for e in edges:
            a, b = (str(x) for x in HebbianEdge.key(e.a, e.b))
            rows.append(
                {
                    "key": f"{session_id}/{a}/{b}",
                    "a": a,
                    "b": b,
                    "weight": e.weight,
                    "at": to_micros(e.last_strengthened),
                }
            )
        if rows:
            rows.sort(key=lambda r: str(r["key"]))
            await self.db.write(
                tx_consume(
                    "UNWIND $rows AS row MERGE (h:WwHebbian {key: row.key}) "
                    "ON CREATE SET h.session_id = $sid, h.a = row.a, h.b = row.b "
                    "SET h.weight = row.weight, h.last_strengthened = row.at",
                    {"rows": rows, "sid": session_id},
                )
            )

    # -- feedback --------------------------------------------------------------------------
    async def feedback_entries(self, session_id: str, recall_id: UUID) -> dict[UUID, FeedbackEntry]:
        rows = await self.db.rows(
            "MATCH (f:WwFeedback {recall_id: $id}) WHERE f.session_id = $sid "
            "RETURN f.memory_id AS mid, f.reward AS reward, f.result AS result",
            {"id": str(recall_id), "sid": session_id},
        )
        return {
            UUID(r["mid"]): FeedbackEntry(
                recall_id, UUID(r["mid"]), float(r["reward"]), str(r["result"])
            )
            for r in rows
        }

    async def save_feedback(self, session_id: str, entries: Sequence[FeedbackEntry]) -> int:
        rows = [
            {
                "key": f"{e.recall_id}/{e.memory_id}",
                "recall_id": str(e.recall_id),
                "memory_id": str(e.memory_id),
                "session_id": session_id,
                "reward": e.reward,
                "result": e.result,
            }
            for e in entries
        ]
        if not rows:
            return 0

        async def tx(t: AsyncManagedTransaction) -> int:
            result = await t.run(
                "UNWIND $rows AS row MERGE (f:WwFeedback {key: row.key}) ON CREATE SET f = row",
                {"rows": rows},
            )
            summary = await result.consume()
            return summary.counters.nodes_created

        return await self.db.write(tx)

    # -- FF encoder ----------------------------------------------------------------------
    async def encoder_version(self, session_id: str) -> int:
        rows = await self.db.rows(
            "MATCH (x:WwEncoder {session_id: $sid}) RETURN x.version AS v", {"sid": session_id}
        )
        return int(rows[0]["v"]) if rows else 0

    async def load_encoder(self, session_id: str) -> EncoderBlob | None:
        rows = await self.db.rows(
            "MATCH (x:WwEncoder {session_id: $sid}) RETURN x.version AS v, x.weights AS w",
            {"sid": session_id},
        )
        return EncoderBlob(int(rows[0]["v"]), bytes(rows[0]["w"])) if rows else None

    async def save_encoder(self, session_id: str, blob: EncoderBlob, expected_version: int) -> bool:
        async def tx(t: AsyncManagedTransaction) -> bool:
            params = {"sid": session_id}
            if expected_version == 0:
                # The unique constraint on session_id serialises two first saves: the second
                # MERGE waits for the first and then finds its node.
                result = await t.run(
                    "MERGE (x:WwEncoder {session_id: $sid}) ON CREATE SET x.version = 0 "
                    "SET x.ww_lock = true REMOVE x.ww_lock",
                    params,
                )
            else:
                # Write-lock before reading the version, or a concurrent save could commit
                # between our read and our write (a lost update).
                result = await t.run(
                    "MATCH (x:WwEncoder {session_id: $sid}) SET x.ww_lock = true REMOVE x.ww_lock",
                    params,
                )
            await result.consume()
            result = await t.run(
                "MATCH (x:WwEncoder {session_id: $sid}) RETURN x.version AS v", params
            )
            record = await result.single()
            if record is None or int(record["v"]) != expected_version:
                return False
            result = await t.run(
                "MATCH (x:WwEncoder {session_id: $sid}) SET x.version = $v, x.weights = $w",
                {**params, "v": blob.version, "w": blob.weights},
            )
            await result.consume()
            return True

        return await self.db.write(tx)

    async def delete_session(self, session_id: str) -> None:
        async def tx(t: AsyncManagedTransaction) -> None:
            for label in _LABELS:
                result = await t.run(
                    f"MATCH (x:{label}) WHERE x.session_id = $sid DETACH DELETE x",
                    {"sid": session_id},
                )
                await result.consume()

        await self.db.write(tx)
