"""One Neo4j store for every kind of memory (entities, skills): what their stores share.

A memory is a node of the kind's label with the SQLite store's column encoding, plus a
per-session label that puts it in that session's full-text index (over ``kw_fts``) and a
capped access-time log as a list property (newest first). A kind's store subclasses
``Neo4jMemoryStore`` with its ``MemoryKind`` and filter Cypher (on node variable ``e``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import datetime
from functools import partial
from typing import Any, TypeVar
from uuid import UUID

from neo4j import AsyncManagedTransaction
from neo4j.exceptions import ConstraintError

from ww.models import IndexState
from ww.storage.memories import (
    ACCESS_CYPHER,
    Access,
    Memory,
    MemoryStoreCore,
    access_row,
    page_after,
)
from ww.storage.neo4j.driver import id_keys, listed, tx_consume
from ww.storage.neo4j.records import Neo4jRecordStore
from ww.storage.neo4j.rows import (
    ACCESS_APPEND,
    NODE_COLUMN,
    WHOLE_NODE,
    fts_text,
    kind_fts_index,
    kind_fts_label,
    newest_first,
    node_props,
    props_row,
)
from ww.storage.payload import from_micros, to_micros
from ww.storage.ports import IdConflictError, ScoredId
from ww.storage.ports.entities import ACCESS_LOG_CAP

__all__ = ["Neo4jMemoryStore"]

M = TypeVar("M", bound=Memory)
F = TypeVar("F")
Work = Callable[[AsyncManagedTransaction], Awaitable[None]]


class Neo4jMemoryStore(MemoryStoreCore[M, F]):
    """Shares ``db`` (its driver) with the record store, which owns open/close. A kind sets
    ``_kind`` and ``_everything`` and implements ``_filter_cypher``."""

    # Labels of the kind's own nodes that hang off a memory by ``_owner_key`` (not by a
    # relationship), so they are deleted with it.
    _owned: tuple[str, ...] = ()
    _owner_key = ""

    def __init__(self, db: Neo4jRecordStore) -> None:
        self._db = db

    def _filter_cypher(self, flt: F) -> tuple[str, dict[str, Any]]:
        """``flt`` as a condition on node variable ``e``, and its parameters."""
        raise NotImplementedError

    def _props(self, memory: M) -> dict[str, Any]:
        k = self._kind
        props = node_props(k.columns, k.to_params(memory))
        props["kw_fts"] = fts_text(k.keyword_text(memory))
        return props

    def _node(self, props: dict[str, Any]) -> M:
        return self._kind.from_row(props_row(self._kind.columns, props))

    async def _nodes(self, query: str, params: dict[str, Any]) -> list[M]:
        """The memories a query returns as ``e``."""
        return [self._node(r["e"]) for r in await self._db.rows(query, params)]

    async def _ensure_fts(self, session_id: str) -> None:
        k = self._kind
        await self._db.ensure_fulltext(
            kind_fts_index(k.key, session_id), kind_fts_label(k.key, session_id), "kw_fts"
        )

    # -- create, read, update, delete ---------------------------------------------------------
    async def _create(self, tx: AsyncManagedTransaction, memory: M) -> None:
        label = kind_fts_label(self._kind.key, memory.session_id)
        result = await tx.run(
            f"CREATE (e:{self._kind.label}:{label}) SET e = $row, e.access_log = [$at]",
            {"row": self._props(memory), "at": to_micros(memory.created_at)},
        )
        await result.consume()

    async def _insert(self, session_id: str, memory: M) -> None:
        self._own(session_id, memory)
        await self._ensure_fts(session_id)

        async def tx(t: AsyncManagedTransaction) -> None:
            await self._create(t, memory)

        try:
            await self._db.write(tx)
        except ConstraintError as exc:
            raise IdConflictError(f"{self._kind.noun} id {memory.id} is already taken") from exc

    async def _get_many(self, session_id: str, ids: Sequence[UUID]) -> dict[UUID, M]:
        if not ids:
            return {}
        rows = await self._db.listed_rows(
            f"UNWIND $ids AS i MATCH (e:{self._kind.label} {{id: i}}) "
            f"WHERE e.session_id = $sid {listed(e=WHOLE_NODE)}",
            {"ids": id_keys(ids), "sid": session_id},
        )
        found = (self._node(r["e"]) for r in rows)
        return {m.id: m for m in found}

    async def _page_rows(
        self, session_id: str, flt: F, n: int, after: tuple[int, str] | None
    ) -> list[M]:
        where, params = self._filter_cypher(flt)
        if after is not None:
            params |= {"c_ts": after[0], "c_id": after[1]}
        return await self._nodes(
            newest_first(self._kind.label, self._kind.order, where, after=after is not None),
            {**params, "sid": session_id, "n": n},
        )

    async def _update(self, session_id: str, memory: M, after: Work | None = None) -> bool:
        """Overwrite the node's columns, then run ``after`` in the same transaction when the
        node is there."""
        self._own(session_id, memory)

        async def tx(t: AsyncManagedTransaction) -> bool:
            result = await t.run(
                f"MATCH (e:{self._kind.label} {{id: $id}}) WHERE e.session_id = $sid "
                "SET e += $row RETURN count(e) AS n",
                {"id": str(memory.id), "sid": session_id, "row": self._props(memory)},
            )
            record = await result.single(strict=True)
            if not record["n"]:
                return False
            if after is not None:
                await after(t)
            return True

        return await self._db.write(tx)

    async def _delete(self, session_id: str, memory_id: UUID) -> bool:
        async def tx(t: AsyncManagedTransaction) -> bool:
            params = {"id": str(memory_id), "sid": session_id}
            # Relationships and the access log go with the node.
            result = await t.run(
                f"MATCH (e:{self._kind.label} {{id: $id}}) WHERE e.session_id = $sid "
                "DETACH DELETE e RETURN count(*) AS n",
                params,
            )
            record = await result.single(strict=True)
            if not record["n"]:
                return False
            for label in self._owned:
                result = await t.run(
                    f"MATCH (x:{label} {{{self._owner_key}: $id}}) WHERE x.session_id = $sid "
                    "DELETE x",
                    params,
                )
                await result.consume()
            return True

        return await self._db.write(tx)

    async def delete_session(self, session_id: str) -> None:
        async def tx(t: AsyncManagedTransaction) -> None:
            for label in (self._kind.label, *self._owned):
                result = await t.run(
                    f"MATCH (x:{label}) WHERE x.session_id = $sid DETACH DELETE x",
                    {"sid": session_id},
                )
                await result.consume()

        await self._db.write(tx)
        await self._db.drop_fulltext(kind_fts_index(self._kind.key, session_id))

    # -- index state, for the reconciler ------------------------------------------------------
    async def _set_index_state(
        self, session_id: str, ids: Sequence[UUID], state: IndexState
    ) -> None:
        if not ids:
            return
        await self._db.write(
            tx_consume(
                f"UNWIND $ids AS i MATCH (e:{self._kind.label} {{id: i}}) "
                "WHERE e.session_id = $sid SET e.index_state = $state",
                {"ids": id_keys(ids), "sid": session_id, "state": state.value},
            )
        )

    async def _pending(self, session_id: str, limit: int) -> list[M]:
        return await self._nodes(
            f"MATCH (e:{self._kind.label} {{session_id: $sid, index_state: 'pending'}}) "
            f"RETURN {NODE_COLUMN} LIMIT $n",
            {"sid": session_id, "n": limit},
        )

    async def indexed_ids(self, session_id: str) -> set[UUID]:
        rows = await self._db.rows(
            f"MATCH (e:{self._kind.label} {{session_id: $sid, index_state: 'indexed'}}) "
            "RETURN e.id AS id",
            {"sid": session_id},
        )
        return {UUID(r["id"]) for r in rows}

    async def indexed_count(self, session_id: str) -> int:
        rows = await self._db.rows(
            f"MATCH (e:{self._kind.label} {{session_id: $sid, index_state: 'indexed'}}) "
            "RETURN count(e) AS n",
            {"sid": session_id},
        )
        return int(rows[0]["n"])

    async def existing_ids(self, session_id: str, ids: Sequence[UUID]) -> set[UUID]:
        return await self.filter_ids(session_id, ids, self._everything)

    async def list_sessions(self) -> list[str]:
        rows = await self._db.rows(
            f"MATCH (e:{self._kind.label}) RETURN DISTINCT e.session_id AS sid ORDER BY sid", {}
        )
        return [str(r["sid"]) for r in rows]

    # -- recall -------------------------------------------------------------------------------
    async def filter_ids(self, session_id: str, ids: Sequence[UUID], flt: F) -> set[UUID]:
        if not ids:
            return set()
        where, params = self._filter_cypher(flt)
        rows = await self._db.listed_rows(
            f"UNWIND $ids AS i MATCH (e:{self._kind.label} {{id: i}}) "
            f"WHERE e.session_id = $sid AND {where} {listed(id='e.id')}",
            {**params, "ids": id_keys(ids), "sid": session_id},
        )
        return {UUID(r["id"]) for r in rows}

    async def keyword_search(
        self, session_id: str, query: str, flt: F, limit: int
    ) -> list[ScoredId]:
        index = kind_fts_index(self._kind.key, session_id)
        where = partial(self._filter_cypher, flt)
        return await self._db.keyword_hits(index, session_id, query, where, limit)

    async def _touch(
        self, session_id: str, sets: str, rows: list[dict[str, Any]], at: datetime
    ) -> None:
        """Run ``SET <sets>`` for each row ``u`` (``u.id`` is the memory's) and log an access
        of each."""
        if not rows:
            return
        # Locking in id order keeps concurrent recalls from deadlocking each other.
        ordered = sorted(rows, key=lambda u: str(u["id"]))
        await self._db.write(
            tx_consume(
                f"UNWIND $rows AS u MATCH (e:{self._kind.label} {{id: u.id}}) "
                f"WHERE e.session_id = $sid SET {sets} WITH e {ACCESS_APPEND}",
                {"rows": ordered, "sid": session_id, "at": to_micros(at), "cap": ACCESS_LOG_CAP},
            )
        )

    async def _record_fsrs(self, session_id: str, updates: Sequence[Access], at: datetime) -> None:
        await self._touch(session_id, ACCESS_CYPHER, [access_row(u) for u in updates], at)

    async def _id_page(
        self, pattern: str, session_id: str, limit: int, cursor: str | None
    ) -> list[dict[str, Any]]:
        """A page (``limit + 1`` maps, for ``cut_page``) of what ``pattern`` binds to ``x``
        in id order: what an export walks through."""
        rows = await self._db.rows(
            f"MATCH {pattern} WHERE x.session_id = $sid AND x.id > $after "
            "RETURN x {.*} AS x ORDER BY x.id LIMIT $n",
            {"sid": session_id, "after": page_after(cursor), "n": limit + 1},
        )
        return [r["x"] for r in rows]

    async def access_times(
        self, session_id: str, ids: Sequence[UUID]
    ) -> dict[UUID, list[datetime]]:
        """The access log of each id (``[]`` for one not in the session), newest first."""
        wanted = id_keys(ids)
        if not wanted:
            return {}
        rows = await self._db.rows(
            f"UNWIND $ids AS i OPTIONAL MATCH (e:{self._kind.label} {{id: i}}) "
            "WHERE e.session_id = $sid RETURN i AS id, e.access_log AS log",
            {"ids": wanted, "sid": session_id},
        )
        found = {r["id"]: r["log"] or [] for r in rows}
        return {
            UUID(k): [from_micros(t) for t in found.get(k, [])[:ACCESS_LOG_CAP]] for k in wanted
        }

    async def replace_access_times(
        self, session_id: str, times: Mapping[UUID, Sequence[datetime]]
    ) -> None:
        """Set each id's access log to exactly ``times[id]`` (newest ``ACCESS_LOG_CAP``), for
        the ids that are memories of the session (an import restoring a copy)."""
        rows = [
            {
                "id": str(i),
                "log": sorted((to_micros(t) for t in ats), reverse=True)[:ACCESS_LOG_CAP],
            }
            for i, ats in sorted(times.items(), key=lambda x: str(x[0]))
        ]
        if rows:
            await self._db.write(
                tx_consume(
                    f"UNWIND $rows AS row MATCH (e:{self._kind.label} {{id: row.id}}) "
                    "WHERE e.session_id = $sid SET e.access_log = row.log",
                    {"rows": rows, "sid": session_id},
                )
            )
