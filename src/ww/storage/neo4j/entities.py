"""``EntityStore`` on the Neo4j record store's database.

Entities are ``:WwEntity`` nodes with the SQLite store's column encoding (integer
microseconds), so both stores round-trip an ``Entity`` exactly and share the cursor format.
Relations are ``:WW_REL`` relationships between entity versions; a relation keeps its
``source_id``/``target_id``/``session_id`` as properties too. The capped access-time log is
a list property on the node (newest first). Keyword search uses one full-text index per
session over a per-session label, as episodes do (neo4j.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from uuid import UUID

from neo4j import AsyncManagedTransaction

from ww.models.semantic import Entity, EntityFilter, Relation
from ww.storage.memories import EntityMethods, cut_page
from ww.storage.neo4j.driver import id_keys, tx_counted
from ww.storage.neo4j.memories import Neo4jMemoryStore
from ww.storage.neo4j.records import tx_all
from ww.storage.neo4j.rows import NODE_COLUMN, node_props, props_row
from ww.storage.payload import to_micros
from ww.storage.ports.entities import (
    RelationExistsError,
    RelationPage,
    VersionClosedError,
)
from ww.storage.sqlite.entities import (
    _RELATION_COLUMNS,
    ENTITY_KIND,
    _derived_id,
    _relation_params,
    _row_to_relation,
)

__all__ = ["Neo4jEntityStore", "entity_filter_cypher"]


def _rel_props(r: Relation) -> dict[str, Any]:
    return node_props(_RELATION_COLUMNS, _relation_params(r))


def _relation(props: dict[str, Any]) -> Relation:
    return _row_to_relation(props_row(_RELATION_COLUMNS, props))


def entity_filter_cypher(flt: EntityFilter, var: str = "e") -> tuple[str, dict[str, Any]]:
    clauses: list[str] = []
    params: dict[str, Any] = {}
    if flt.entity_type is not None:
        clauses.append(f"{var}.entity_type = $f_type")
        params["f_type"] = flt.entity_type.value
    if flt.as_of is not None:
        clauses.append(
            f"{var}.valid_from <= $f_as_of "
            f"AND ({var}.valid_to IS NULL OR {var}.valid_to > $f_as_of)"
        )
        params["f_as_of"] = to_micros(flt.as_of)
    elif not flt.include_closed:
        clauses.append(f"{var}.valid_to IS NULL")
    return (" AND ".join(clauses) or "true"), params


class Neo4jEntityStore(Neo4jMemoryStore[Entity, EntityFilter], EntityMethods):
    """Entities with their bi-temporal versions and relations (``:WW_REL``); the rest is
    shared."""

    _kind = ENTITY_KIND
    _everything = EntityFilter(include_closed=True)

    def _filter_cypher(self, flt: EntityFilter) -> tuple[str, dict[str, Any]]:
        return entity_filter_cypher(flt)

    async def supersede_entity(self, session_id: str, old_id: UUID, new: Entity) -> Entity:
        self._own(session_id, new)
        await self._ensure_fts(session_id)
        key, new_key, ts = str(old_id), str(new.id), to_micros(new.valid_from)

        async def tx(t: AsyncManagedTransaction) -> Entity:
            # Write-lock the old version before reading it, so two concurrent supersedes of
            # one version cannot both see it open.
            result = await t.run(
                "MATCH (o:WwEntity {id: $id}) WHERE o.session_id = $sid "
                "SET o.ww_lock = true REMOVE o.ww_lock",
                {"id": key, "sid": session_id},
            )
            await result.consume()
            result = await t.run(
                "MATCH (o:WwEntity {id: $id}) WHERE o.session_id = $sid RETURN o {.*} AS o",
                {"id": key, "sid": session_id},
            )
            record = await result.single()
            if record is None:
                raise KeyError(key)
            old = self._node(record["o"])
            if old.valid_to is not None:
                raise VersionClosedError(f"entity version {old_id} is already closed")
            result = await t.run(
                "MATCH (o:WwEntity {id: $id}) SET o.valid_to = $ts", {"id": key, "ts": ts}
            )
            await result.consume()
            await self._create(t, new)
            # The graph carries over to the new version; the old version keeps its own
            # relations as history.
            result = await t.run(
                "MATCH (o:WwEntity {id: $id})-[r:WW_REL]-() WHERE r.session_id = $sid "
                "AND r.valid_to IS NULL RETURN DISTINCT r {.*} AS r",
                {"id": key, "sid": session_id},
            )
            copies = []
            for rec in [rec async for rec in result]:
                r = _relation(rec["r"])
                copies.append(
                    _rel_props(
                        r.model_copy(
                            update={
                                "id": _derived_id(r.id, new.id),
                                "source_id": new.id if r.source_id == old_id else r.source_id,
                                "target_id": new.id if r.target_id == old_id else r.target_id,
                                "valid_from": new.valid_from,
                            }
                        )
                    )
                )
            result = await t.run(
                "UNWIND $rels AS r MATCH (s:WwEntity {id: r.source_id}) "
                "MATCH (d:WwEntity {id: r.target_id}) "
                "MERGE (s)-[x:WW_REL {relation_type: r.relation_type}]->(d) ON CREATE SET x = r",
                {"rels": copies},
            )
            await result.consume()
            # Relations are bi-temporal too: the old version's close with it.
            result = await t.run(
                "MATCH (o:WwEntity {id: $id})-[r:WW_REL]-() WHERE r.session_id = $sid "
                "AND r.valid_to IS NULL AND r.source_id <> $new AND r.target_id <> $new "
                "SET r.valid_to = $ts",
                {"id": key, "sid": session_id, "new": new_key, "ts": ts},
            )
            await result.consume()
            return old.model_copy(update={"valid_to": new.valid_from})

        return await self._db.write(tx)

    async def history(self, session_id: str, lineage_id: UUID) -> list[Entity]:
        return await self._nodes(
            "MATCH (e:WwEntity {lineage_id: $lid}) WHERE e.session_id = $sid "
            f"RETURN {NODE_COLUMN} ORDER BY e.version",
            {"lid": str(lineage_id), "sid": session_id},
        )

    # -- recall -----------------------------------------------------------------------------
    async def matching_ids(self, session_id: str, flt: EntityFilter, cap: int) -> set[UUID] | None:
        where, params = entity_filter_cypher(flt)
        rows = await self._db.rows(
            f"MATCH (e:WwEntity) WHERE e.session_id = $sid AND {where} RETURN e.id AS id LIMIT $n",
            {**params, "sid": session_id, "n": cap + 1},
        )
        return None if len(rows) > cap else {UUID(r["id"]) for r in rows}

    # -- relations --------------------------------------------------------------------------
    async def list_relations(self, session_id: str, limit: int, cursor: str | None) -> RelationPage:
        rows = await self._id_page("()-[x:WW_REL]->()", session_id, limit, cursor)
        return RelationPage(*cut_page([_relation(r) for r in rows], limit))

    async def insert_relation(self, session_id: str, relation: Relation) -> None:
        if relation.session_id != session_id:
            raise ValueError("relation belongs to another session")
        # MERGE on the (source, type, target) pattern locks both ends, so two concurrent
        # inserts of one relation cannot both create it.
        rows = await self._db.write(
            tx_all(
                "MATCH (s:WwEntity {id: $src}) WHERE s.session_id = $sid "
                "MATCH (d:WwEntity {id: $dst}) WHERE d.session_id = $sid "
                "MERGE (s)-[r:WW_REL {relation_type: $type}]->(d) ON CREATE SET r = $row "
                "RETURN r.id AS id",
                {
                    "src": str(relation.source_id),
                    "dst": str(relation.target_id),
                    "sid": session_id,
                    "type": relation.relation_type.value,
                    "row": _rel_props(relation),
                },
            )
        )
        if not rows:
            raise KeyError("relation endpoint not found")
        if rows[0]["id"] != str(relation.id):
            raise RelationExistsError(
                f"a {relation.relation_type.value} relation from {relation.source_id} "
                f"to {relation.target_id} already exists"
            )

    async def get_relation(self, session_id: str, relation_id: UUID) -> Relation | None:
        rows = await self._db.rows(
            "MATCH ()-[r:WW_REL {id: $id}]->() WHERE r.session_id = $sid RETURN r {.*} AS r",
            {"id": str(relation_id), "sid": session_id},
        )
        return _relation(rows[0]["r"]) if rows else None

    async def relations_of(self, session_id: str, entity_id: UUID) -> list[Relation]:
        rows = await self._db.rows(
            "MATCH (e:WwEntity {id: $id})-[r:WW_REL]-() WHERE r.session_id = $sid "
            "WITH DISTINCT r RETURN r {.*} AS r ORDER BY r.weight DESC, r.id",
            {"id": str(entity_id), "sid": session_id},
        )
        return [_relation(r["r"]) for r in rows]

    async def delete_relation(self, session_id: str, relation_id: UUID) -> bool:
        return await self._db.write(
            tx_counted(
                "MATCH ()-[r:WW_REL {id: $id}]->() WHERE r.session_id = $sid "
                "DELETE r RETURN count(*) AS n",
                {"id": str(relation_id), "sid": session_id},
            )
        )

    async def adjacency(
        self, session_id: str, ids: Sequence[UUID]
    ) -> dict[UUID, list[tuple[UUID, float]]]:
        wanted = id_keys(ids)
        out: dict[UUID, list[tuple[UUID, float]]] = {UUID(k): [] for k in wanted}
        if not wanted:
            return out
        # Outgoing relations first, then incoming, each by the other end's id (as SQLite).
        rows = await self._db.rows(
            "UNWIND $ids AS i MATCH (e:WwEntity {id: i})-[r:WW_REL]-(o:WwEntity) "
            "WHERE r.session_id = $sid AND r.valid_to IS NULL AND o.valid_to IS NULL "
            "RETURN i AS id, o.id AS other, r.weight AS w, r.source_id = i AS out "
            "ORDER BY id, out DESC, other",
            {"ids": wanted, "sid": session_id},
        )
        for r in rows:
            out[UUID(r["id"])].append((UUID(r["other"]), float(r["w"])))
        return out
