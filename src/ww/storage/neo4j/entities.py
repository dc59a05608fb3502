"""``EntityStore`` on the Neo4j record store's database.

Entities are ``:WwEntity`` nodes with the SQLite store's column encoding (integer
microseconds), so both stores round-trip an ``Entity`` exactly and share the cursor format.
Relations are ``:WW_REL`` relationships between entity versions; a relation keeps its
``source_id``/``target_id``/``session_id`` as properties too. The capped access-time log is
a list property on the node (newest first). Keyword search uses one full-text index per
session over a per-session label, as episodes do (neo4j.py).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

from neo4j import AsyncManagedTransaction
from neo4j.exceptions import ConstraintError

from ww.models import IndexState
from ww.models.semantic import Entity, EntityFilter, Relation
from ww.storage.neo4j.records import Neo4jRecordStore, tx_all, tx_consume
from ww.storage.neo4j.rows import (
    ACCESS_APPEND,
    fts_query,
    fts_text,
    kind_fts_index,
    kind_fts_label,
    node_props,
    props_row,
)
from ww.storage.payload import from_micros, to_micros
from ww.storage.ports import IdConflictError, ScoredId
from ww.storage.ports.entities import (
    ACCESS_LOG_CAP,
    EntityAccess,
    EntityPage,
    RelationExistsError,
    RelationPage,
    VersionClosedError,
)
from ww.storage.sqlite.entities import (
    _RELATION_COLUMNS,
    ENTITY_COLUMNS,
    _derived_id,
    _entity_params,
    _keyword_text,
    _relation_params,
    _row_to_entity,
    _row_to_relation,
    encode_key,
)
from ww.storage.sqlite.rows import decode_cursor, keyword_terms

__all__ = ["Neo4jEntityStore", "entity_filter_cypher"]

_KIND = "ent"
_E = "e {.*} AS e"


def _props(e: Entity) -> dict[str, Any]:
    props = node_props(ENTITY_COLUMNS, _entity_params(e))
    props["kw_fts"] = fts_text(_keyword_text(e))
    return props


def _entity(props: dict[str, Any]) -> Entity:
    return _row_to_entity(props_row(ENTITY_COLUMNS, props))


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


def _keys(ids: Sequence[UUID]) -> list[str]:
    return [str(i) for i in dict.fromkeys(ids)]


class Neo4jEntityStore:
    """Shares ``db`` (its driver) with the record store, which owns open/close."""

    def __init__(self, db: Neo4jRecordStore) -> None:
        self._db = db

    async def _create(self, tx: AsyncManagedTransaction, entity: Entity) -> None:
        label = kind_fts_label(_KIND, entity.session_id)
        result = await tx.run(
            f"CREATE (e:WwEntity:{label}) SET e = $row, e.access_log = [$at]",
            {"row": _props(entity), "at": to_micros(entity.created_at)},
        )
        await result.consume()

    async def _ensure_fts(self, session_id: str) -> None:
        await self._db.ensure_fulltext(
            kind_fts_index(_KIND, session_id), kind_fts_label(_KIND, session_id), "kw_fts"
        )

    # -- entities ---------------------------------------------------------------------------
    async def insert_entity(self, session_id: str, entity: Entity) -> None:
        if entity.session_id != session_id:
            raise ValueError("entity belongs to another session")
        await self._ensure_fts(session_id)

        async def tx(t: AsyncManagedTransaction) -> None:
            await self._create(t, entity)

        try:
            await self._db.write(tx)
        except ConstraintError as exc:
            raise IdConflictError(f"entity id {entity.id} is already taken") from exc

    async def get_entity(self, session_id: str, entity_id: UUID) -> Entity | None:
        return (await self.get_entities(session_id, [entity_id])).get(entity_id)

    async def get_entities(self, session_id: str, ids: Sequence[UUID]) -> dict[UUID, Entity]:
        if not ids:
            return {}
        rows = await self._db.rows(
            f"UNWIND $ids AS i MATCH (e:WwEntity {{id: i}}) WHERE e.session_id = $sid RETURN {_E}",
            {"ids": _keys(ids), "sid": session_id},
        )
        return {e.id: e for e in (_entity(r["e"]) for r in rows)}

    async def list_entities(
        self, session_id: str, flt: EntityFilter, limit: int, cursor: str | None
    ) -> EntityPage:
        where, params = entity_filter_cypher(flt)
        if cursor is not None:
            ts, ident = decode_cursor(cursor)
            where += " AND (e.valid_from < $c_ts OR (e.valid_from = $c_ts AND e.id < $c_id))"
            params |= {"c_ts": ts, "c_id": ident}
        rows = await self._db.rows(
            f"MATCH (e:WwEntity) WHERE e.session_id = $sid AND {where} "
            f"RETURN {_E} ORDER BY e.valid_from DESC, e.id DESC LIMIT $n",
            {**params, "sid": session_id, "n": limit + 1},
        )
        items = [_entity(r["e"]) for r in rows[:limit]]
        more = len(rows) > limit and items
        nxt = encode_key(to_micros(items[-1].valid_from), str(items[-1].id)) if more else None
        return EntityPage(items, nxt)

    async def update_entity(self, session_id: str, entity: Entity) -> bool:
        if entity.session_id != session_id:
            raise ValueError("entity belongs to another session")
        rows = await self._db.write(
            tx_all(
                "MATCH (e:WwEntity {id: $id}) WHERE e.session_id = $sid SET e += $row "
                "RETURN count(e) AS n",
                {"id": str(entity.id), "sid": session_id, "row": _props(entity)},
            )
        )
        return bool(rows and rows[0]["n"])

    async def supersede_entity(self, session_id: str, old_id: UUID, new: Entity) -> Entity:
        if new.session_id != session_id:
            raise ValueError("entity belongs to another session")
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
            old = _entity(record["o"])
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
        rows = await self._db.rows(
            "MATCH (e:WwEntity {lineage_id: $lid}) WHERE e.session_id = $sid "
            f"RETURN {_E} ORDER BY e.version",
            {"lid": str(lineage_id), "sid": session_id},
        )
        return [_entity(r["e"]) for r in rows]

    async def delete_entity(self, session_id: str, entity_id: UUID) -> bool:
        # Relations and the access log go with the node.
        rows = await self._db.write(
            tx_all(
                "MATCH (e:WwEntity {id: $id}) WHERE e.session_id = $sid "
                "DETACH DELETE e RETURN count(*) AS n",
                {"id": str(entity_id), "sid": session_id},
            )
        )
        return bool(rows and rows[0]["n"])

    async def delete_session(self, session_id: str) -> None:
        await self._db.write(
            tx_consume("MATCH (e:WwEntity {session_id: $sid}) DETACH DELETE e", {"sid": session_id})
        )
        await self._db.drop_fulltext(kind_fts_index(_KIND, session_id))

    # -- index state --------------------------------------------------------------------------
    async def _set_state(self, session_id: str, ids: Sequence[UUID], state: IndexState) -> None:
        if not ids:
            return
        await self._db.write(
            tx_consume(
                "UNWIND $ids AS i MATCH (e:WwEntity {id: i}) WHERE e.session_id = $sid "
                "SET e.index_state = $state",
                {"ids": _keys(ids), "sid": session_id, "state": state.value},
            )
        )

    async def mark_indexed(self, session_id: str, ids: Sequence[UUID]) -> None:
        await self._set_state(session_id, ids, IndexState.INDEXED)

    async def mark_pending(self, session_id: str, ids: Sequence[UUID]) -> None:
        await self._set_state(session_id, ids, IndexState.PENDING)

    async def pending_entities(self, session_id: str, limit: int) -> list[Entity]:
        rows = await self._db.rows(
            f"MATCH (e:WwEntity {{session_id: $sid, index_state: 'pending'}}) RETURN {_E} LIMIT $n",
            {"sid": session_id, "n": limit},
        )
        return [_entity(r["e"]) for r in rows]

    async def indexed_ids(self, session_id: str) -> set[UUID]:
        rows = await self._db.rows(
            "MATCH (e:WwEntity {session_id: $sid, index_state: 'indexed'}) RETURN e.id AS id",
            {"sid": session_id},
        )
        return {UUID(r["id"]) for r in rows}

    async def existing_ids(self, session_id: str, ids: Sequence[UUID]) -> set[UUID]:
        return await self.filter_ids(session_id, ids, EntityFilter(include_closed=True))

    async def list_sessions(self) -> list[str]:
        rows = await self._db.rows(
            "MATCH (e:WwEntity) RETURN DISTINCT e.session_id AS sid ORDER BY sid", {}
        )
        return [str(r["sid"]) for r in rows]

    # -- recall -----------------------------------------------------------------------------
    async def matching_ids(self, session_id: str, flt: EntityFilter, cap: int) -> set[UUID] | None:
        where, params = entity_filter_cypher(flt)
        rows = await self._db.rows(
            f"MATCH (e:WwEntity) WHERE e.session_id = $sid AND {where} RETURN e.id AS id LIMIT $n",
            {**params, "sid": session_id, "n": cap + 1},
        )
        return None if len(rows) > cap else {UUID(r["id"]) for r in rows}

    async def filter_ids(
        self, session_id: str, ids: Sequence[UUID], flt: EntityFilter
    ) -> set[UUID]:
        if not ids:
            return set()
        where, params = entity_filter_cypher(flt)
        rows = await self._db.rows(
            "UNWIND $ids AS i MATCH (e:WwEntity {id: i}) "
            f"WHERE e.session_id = $sid AND {where} RETURN e.id AS id",
            {**params, "ids": _keys(ids), "sid": session_id},
        )
        return {UUID(r["id"]) for r in rows}

    async def keyword_search(
        self, session_id: str, query: str, flt: EntityFilter, limit: int
    ) -> list[ScoredId]:
        terms = keyword_terms(query)
        if not terms:
            return []
        where, params = entity_filter_cypher(flt)
        rows = await self._db.fulltext_search(
            kind_fts_index(_KIND, session_id),
            "CALL db.index.fulltext.queryNodes($index, $q) YIELD node AS e, score "
            f"WHERE e.session_id = $sid AND {where} "
            "RETURN e.id AS id, score ORDER BY score DESC, id LIMIT $n",
            {**params, "q": fts_query(terms), "sid": session_id, "n": limit},
        )
        return [ScoredId(UUID(r["id"]), float(r["score"])) for r in rows or []]

    async def record_access(
        self, session_id: str, updates: Sequence[EntityAccess], at: datetime
    ) -> None:
        if not updates:
            return
        rows = [
            {
                "id": str(u.id),
                "stability": u.fsrs.stability,
                "difficulty": u.fsrs.difficulty,
                "last_review": to_micros(u.fsrs.last_review),
                "reps": u.fsrs.reps,
                "lapses": u.fsrs.lapses,
                "access_count": u.access_count,
                "last_accessed": to_micros(u.last_accessed),
            }
            # Locking in id order keeps concurrent recalls from deadlocking each other.
            for u in sorted(updates, key=lambda u: str(u.id))
        ]
        await self._db.write(
            tx_consume(
                "UNWIND $rows AS u MATCH (e:WwEntity {id: u.id}) WHERE e.session_id = $sid "
                "SET e.stability = u.stability, e.difficulty = u.difficulty, "
                "e.last_review = u.last_review, e.reps = u.reps, e.lapses = u.lapses, "
                "e.access_count = u.access_count, e.last_accessed = u.last_accessed "
                f"WITH e {ACCESS_APPEND}",
                {"rows": rows, "sid": session_id, "at": to_micros(at), "cap": ACCESS_LOG_CAP},
            )
        )

    async def access_times(
        self, session_id: str, ids: Sequence[UUID]
    ) -> dict[UUID, list[datetime]]:
        return await access_times(self._db, "WwEntity", session_id, ids)

    async def replace_access_times(
        self, session_id: str, times: Mapping[UUID, Sequence[datetime]]
    ) -> None:
        await replace_access_times(self._db, "WwEntity", session_id, times)

    # -- relations --------------------------------------------------------------------------
    async def list_relations(self, session_id: str, limit: int, cursor: str | None) -> RelationPage:
        after = "" if cursor is None else decode_cursor(cursor)[1]
        rows = await self._db.rows(
            "MATCH ()-[r:WW_REL]->() WHERE r.session_id = $sid AND r.id > $after "
            "RETURN r {.*} AS r ORDER BY r.id LIMIT $n",
            {"sid": session_id, "after": after, "n": limit + 1},
        )
        items = [_relation(r["r"]) for r in rows[:limit]]
        more = len(rows) > limit and items
        return RelationPage(items, encode_key(0, str(items[-1].id)) if more else None)

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
        rows = await self._db.write(
            tx_all(
                "MATCH ()-[r:WW_REL {id: $id}]->() WHERE r.session_id = $sid "
                "DELETE r RETURN count(*) AS n",
                {"id": str(relation_id), "sid": session_id},
            )
        )
        return bool(rows and rows[0]["n"])

    async def adjacency(
        self, session_id: str, ids: Sequence[UUID]
    ) -> dict[UUID, list[tuple[UUID, float]]]:
        keys = _keys(ids)
        out: dict[UUID, list[tuple[UUID, float]]] = {UUID(k): [] for k in keys}
        if not keys:
            return out
        # Outgoing relations first, then incoming, each by the other end's id (as SQLite).
        rows = await self._db.rows(
            "UNWIND $ids AS i MATCH (e:WwEntity {id: i})-[r:WW_REL]-(o:WwEntity) "
            "WHERE r.session_id = $sid AND r.valid_to IS NULL AND o.valid_to IS NULL "
            "RETURN i AS id, o.id AS other, r.weight AS w, r.source_id = i AS out "
            "ORDER BY id, out DESC, other",
            {"ids": keys, "sid": session_id},
        )
        for r in rows:
            out[UUID(r["id"])].append((UUID(r["other"]), float(r["w"])))
        return out


async def access_times(
    db: Neo4jRecordStore, label: str, session_id: str, ids: Sequence[UUID]
) -> dict[UUID, list[datetime]]:
    """The access log of each id (``[]`` for one not in the session), newest first."""
    keys = _keys(ids)
    if not keys:
        return {}
    rows = await db.rows(
        f"UNWIND $ids AS i OPTIONAL MATCH (e:{label} {{id: i}}) WHERE e.session_id = $sid "
        "RETURN i AS id, e.access_log AS log",
        {"ids": keys, "sid": session_id},
    )
    found = {r["id"]: r["log"] or [] for r in rows}
    return {UUID(k): [from_micros(t) for t in found.get(k, [])[:ACCESS_LOG_CAP]] for k in keys}


async def replace_access_times(
    db: Neo4jRecordStore,
    label: str,
    session_id: str,
    times: Mapping[UUID, Sequence[datetime]],
) -> None:
    """Set each id's access log to exactly ``times[id]`` (newest ``ACCESS_LOG_CAP``), for the
    ids that are ``label`` nodes of the session (an import restoring a copy)."""
    rows = [
        {"id": str(i), "log": sorted((to_micros(t) for t in ats), reverse=True)[:ACCESS_LOG_CAP]}
        for i, ats in sorted(times.items(), key=lambda x: str(x[0]))
    ]
    if rows:
        await db.write(
            tx_consume(
                f"UNWIND $rows AS row MATCH (e:{label} {{id: row.id}}) "
                "WHERE e.session_id = $sid SET e.access_log = row.log",
                {"rows": rows, "sid": session_id},
            )
        )
