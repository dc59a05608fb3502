"""``ConsolidationStore`` on the Neo4j record store's database.

Links are ``:WwLink`` nodes (key ``session/source/target/type``, unique), consolidation's
record of an entity a ``:WwConsolidated`` node keyed by ``entity_id``; relation weights are
the ``:WW_REL`` relationships of the entity store (neo4j/entities.py).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

from neo4j import AsyncManagedTransaction

from ww.storage.neo4j.records import Neo4jRecordStore, tx_consume
from ww.storage.payload import from_micros, to_micros
from ww.storage.ports.consolidation import (
    ConsolidatedEntity,
    EdgeDecay,
    LinkType,
    MemoryLink,
    WeightedEdge,
)
from ww.storage.sqlite.consolidation import link_values

__all__ = ["Neo4jConsolidationStore"]

_MERGE_LINKS = "UNWIND $rows AS row MERGE (k:WwLink {key: row.key}) ON CREATE SET k = row"


def _link_row(session_id: str, source: str, target: str, kind: str, ts: int) -> dict[str, object]:
    return {
        "key": f"{session_id}/{source}/{target}/{kind}",
        "session_id": session_id,
        "source_id": source,
        "target_id": target,
        "link_type": kind,
        "created_at": ts,
    }


def _links(rows: Sequence[Mapping[str, Any]]) -> list[MemoryLink]:
    return [
        MemoryLink(UUID(r["s"]), UUID(r["t"]), LinkType(r["type"]), from_micros(r["at"]))
        for r in rows
    ]


class Neo4jConsolidationStore:
    """Shares ``db`` (its driver) with the record store, which owns open/close."""

    def __init__(self, db: Neo4jRecordStore) -> None:
        self._db = db

    async def links(self, session_id: str, memory_id: UUID) -> list[MemoryLink]:
        rows = await self._db.rows(
            "CALL { MATCH (k:WwLink {session_id: $sid, source_id: $id}) RETURN k "
            "UNION MATCH (k:WwLink {session_id: $sid, target_id: $id}) RETURN k } "
            "RETURN k.source_id AS s, k.target_id AS t, k.link_type AS type, "
            "k.created_at AS at ORDER BY at, s, t",
            {"sid": session_id, "id": str(memory_id)},
        )
        return _links(rows)

    async def add_links(self, session_id: str, links: Sequence[MemoryLink]) -> int:
        rows = [_link_row(*link_values(session_id, k)) for k in links]
        if not rows:
            return 0

        async def tx(t: AsyncManagedTransaction) -> int:
            result = await t.run(_MERGE_LINKS, {"rows": rows})
            summary = await result.consume()
            return summary.counters.nodes_created

        return await self._db.write(tx)

    async def latest_links(self, session_id: str) -> list[MemoryLink]:
        # With no link, max() is null and the second match finds nothing.
        rows = await self._db.rows(
            "MATCH (k:WwLink {session_id: $sid}) WITH max(k.created_at) AS last "
            "MATCH (k:WwLink {session_id: $sid}) WHERE k.created_at = last "
            "RETURN k.source_id AS s, k.target_id AS t, k.link_type AS type, "
            "k.created_at AS at ORDER BY type, t, s",
            {"sid": session_id},
        )
        return _links(rows)

    async def consolidated(self, session_id: str) -> list[ConsolidatedEntity]:
        rows = await self._db.rows(
            "MATCH (c:WwConsolidated {session_id: $sid}) "
            "MATCH (e:WwEntity {id: c.entity_id}) WHERE e.valid_to IS NULL "
            "OPTIONAL MATCH (k:WwLink {session_id: $sid, target_id: c.entity_id, "
            "link_type: $type}) "
            "RETURN c.entity_id AS id, c.members_hash AS hash, c.confidence AS confidence, "
            "collect(k.source_id) AS members ORDER BY id",
            {"sid": session_id, "type": LinkType.CONSOLIDATED_INTO.value},
        )
        return [
            ConsolidatedEntity(
                UUID(r["id"]),
                r["hash"],
                frozenset(UUID(m) for m in r["members"]),
                float(r["confidence"]),
            )
            for r in rows
        ]

    async def save_consolidated(
        self, session_id: str, entity: ConsolidatedEntity, at: datetime
    ) -> None:
        key, ts, members = str(entity.entity_id), to_micros(at), entity.members
        kind = LinkType.CONSOLIDATED_INTO.value

        async def tx(t: AsyncManagedTransaction) -> None:
            result = await t.run(
                "MERGE (c:WwConsolidated {entity_id: $id}) SET c.session_id = $sid, "
                "c.members_hash = $hash, c.members = $n, c.confidence = $confidence, "
                "c.updated_at = $ts",
                {
                    "id": key,
                    "sid": session_id,
                    "hash": entity.members_hash,
                    "n": len(members),
                    "confidence": entity.confidence,
                    "ts": ts,
                },
            )
            await result.consume()
            result = await t.run(
                "MATCH (k:WwLink {session_id: $sid, target_id: $id, link_type: $type}) DELETE k",
                {"sid": session_id, "id": key, "type": kind},
            )
            await result.consume()
            rows = [_link_row(session_id, str(m), key, kind, ts) for m in sorted(members, key=str)]
            result = await t.run(_MERGE_LINKS, {"rows": rows})
            await result.consume()

        await self._db.write(tx)

    async def edges(self, session_id: str, after: UUID | None, limit: int) -> list[WeightedEdge]:
        rows = await self._db.rows(
            "MATCH ()-[r:WW_REL]->() WHERE r.session_id = $sid AND r.valid_to IS NULL "
            "AND r.id > $after RETURN r.id AS id, r.weight AS w, "
            "CASE WHEN coalesce(r.last_decayed, 0) > r.last_strengthened "
            "THEN r.last_decayed ELSE r.last_strengthened END AS since "
            "ORDER BY id LIMIT $n",
            {"sid": session_id, "after": str(after) if after else "", "n": limit},
        )
        return [WeightedEdge(UUID(r["id"]), float(r["w"]), from_micros(r["since"])) for r in rows]

    async def decay_edges(
        self, session_id: str, changes: Sequence[EdgeDecay], at: datetime
    ) -> None:
        if not changes:
            return
        rows = [
            {"id": str(d.id), "weight": d.weight, "pruned": d.pruned}
            for d in sorted(changes, key=lambda d: str(d.id))
        ]
        await self._db.write(
            tx_consume(
                "UNWIND $rows AS row MATCH ()-[r:WW_REL {id: row.id}]->() "
                "WHERE r.session_id = $sid AND r.valid_to IS NULL "
                "SET r.weight = row.weight, r.last_decayed = $ts, "
                "r.valid_to = CASE WHEN row.pruned THEN $ts ELSE null END",
                {"rows": rows, "sid": session_id, "ts": to_micros(at)},
            )
        )

    async def delete_session(self, session_id: str) -> None:
        async def tx(t: AsyncManagedTransaction) -> None:
            for label in ("WwLink", "WwConsolidated"):
                result = await t.run(
                    f"MATCH (x:{label}) WHERE x.session_id = $sid DELETE x", {"sid": session_id}
                )
                await result.consume()

        await self._db.write(tx)
