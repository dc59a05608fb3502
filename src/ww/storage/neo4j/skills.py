"""``SkillStore`` on the Neo4j record store's database.

Skills are ``:WwSkill`` nodes with the SQLite store's column encoding; previous versions are
``:WwSkillVersion`` and executions ``:WwSkillExecution`` nodes keyed by ``skill_id``. The
capped access-time log is a list property on the skill node, and keyword search uses one
full-text index per session, as for entities (neo4j/entities.py).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

from neo4j import AsyncManagedTransaction
from neo4j.exceptions import ConstraintError

from ww.models import IndexState
from ww.models.procedural import Skill, SkillExecution, SkillVersion
from ww.storage.neo4j.entities import access_times, replace_access_times
from ww.storage.neo4j.records import Neo4jRecordStore, tx_consume
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
from ww.storage.ports.entities import ACCESS_LOG_CAP
from ww.storage.ports.skills import ExecutionPage, SkillFilter, SkillPage
from ww.storage.sqlite.entities import encode_key
from ww.storage.sqlite.rows import decode_cursor, keyword_terms
from ww.storage.sqlite.skills import SKILL_COLUMNS, _keyword_text, _row_to_skill, _skill_params

__all__ = ["Neo4jSkillStore"]

_KIND = "skl"
_S = "s {.*} AS s"


def _props(s: Skill) -> dict[str, Any]:
    props = node_props(SKILL_COLUMNS, _skill_params(s))
    props["kw_fts"] = fts_text(_keyword_text(s))
    return props


def _skill(props: dict[str, Any]) -> Skill:
    return _row_to_skill(props_row(SKILL_COLUMNS, props))


def _filter_cypher(flt: SkillFilter) -> tuple[str, dict[str, Any]]:
    clauses: list[str] = []
    params: dict[str, Any] = {}
    if flt.domain is not None:
        clauses.append("s.domain = $f_domain")
        params["f_domain"] = flt.domain
    if not flt.include_deprecated:
        clauses.append("s.deprecated = 0")
    return (" AND ".join(clauses) or "true"), params


def _keys(ids: Sequence[UUID]) -> list[str]:
    return [str(i) for i in dict.fromkeys(ids)]


def _execution_props(
    e: SkillExecution, session_id: str, skill_id: UUID | None = None
) -> dict[str, Any]:
    return {
        "id": str(e.id),
        "skill_id": str(skill_id if skill_id is not None else e.skill_id),
        "session_id": session_id,
        "skill_version": e.skill_version,
        "success": e.success,
        "duration_ms": e.duration_ms,
        "failed_step": e.failed_step,
        "error": e.error,
        "executed_at": to_micros(e.executed_at),
    }


def _execution(x: dict[str, Any]) -> SkillExecution:
    return SkillExecution(
        id=UUID(x["id"]),
        skill_id=UUID(x["skill_id"]),
        skill_version=x["skill_version"],
        success=bool(x["success"]),
        duration_ms=x["duration_ms"],
        failed_step=x.get("failed_step"),
        error=x.get("error"),
        executed_at=from_micros(x["executed_at"]),
    )


async def _session_skills(
    t: AsyncManagedTransaction, session_id: str, skill_ids: Sequence[str]
) -> set[str]:
    """The ids among ``skill_ids`` that are skills of the session."""
    result = await t.run(
        "UNWIND $ids AS i MATCH (s:WwSkill {id: i}) WHERE s.session_id = $sid RETURN s.id AS id",
        {"ids": list(dict.fromkeys(skill_ids)), "sid": session_id},
    )
    return {str(r["id"]) async for r in result}


class Neo4jSkillStore:
    """Shares ``db`` (its driver) with the record store, which owns open/close."""

    def __init__(self, db: Neo4jRecordStore) -> None:
        self._db = db

    async def insert_skill(self, session_id: str, skill: Skill) -> None:
        if skill.session_id != session_id:
            raise ValueError("skill belongs to another session")
        await self._db.ensure_fulltext(
            kind_fts_index(_KIND, session_id), kind_fts_label(_KIND, session_id), "kw_fts"
        )
        try:
            await self._db.write(
                tx_consume(
                    f"CREATE (s:WwSkill:{kind_fts_label(_KIND, session_id)}) "
                    "SET s = $row, s.access_log = [$at]",
                    {"row": _props(skill), "at": to_micros(skill.created_at)},
                )
            )
        except ConstraintError as exc:
            raise IdConflictError(f"skill id {skill.id} is already taken") from exc

    async def get_skill(self, session_id: str, skill_id: UUID) -> Skill | None:
        return (await self.get_skills(session_id, [skill_id])).get(skill_id)

    async def get_skills(self, session_id: str, ids: Sequence[UUID]) -> dict[UUID, Skill]:
        if not ids:
            return {}
        rows = await self._db.rows(
            f"UNWIND $ids AS i MATCH (s:WwSkill {{id: i}}) WHERE s.session_id = $sid RETURN {_S}",
            {"ids": _keys(ids), "sid": session_id},
        )
        return {s.id: s for s in (_skill(r["s"]) for r in rows)}

    async def list_skills(
        self, session_id: str, flt: SkillFilter, limit: int, cursor: str | None
    ) -> SkillPage:
        where, params = _filter_cypher(flt)
        if cursor is not None:
            ts, ident = decode_cursor(cursor)
            where += " AND (s.created_at < $c_ts OR (s.created_at = $c_ts AND s.id < $c_id))"
            params |= {"c_ts": ts, "c_id": ident}
        rows = await self._db.rows(
            f"MATCH (s:WwSkill) WHERE s.session_id = $sid AND {where} "
            f"RETURN {_S} ORDER BY s.created_at DESC, s.id DESC LIMIT $n",
            {**params, "sid": session_id, "n": limit + 1},
        )
        items = [_skill(r["s"]) for r in rows[:limit]]
        more = len(rows) > limit and items
        nxt = encode_key(to_micros(items[-1].created_at), str(items[-1].id)) if more else None
        return SkillPage(items, nxt)

    async def update_skill(
        self, session_id: str, skill: Skill, previous: Skill | None = None
    ) -> bool:
        if skill.session_id != session_id:
            raise ValueError("skill belongs to another session")

        async def tx(t: AsyncManagedTransaction) -> bool:
            result = await t.run(
                "MATCH (s:WwSkill {id: $id}) WHERE s.session_id = $sid SET s += $row "
                "RETURN count(s) AS n",
                {"id": str(skill.id), "sid": session_id, "row": _props(skill)},
            )
            record = await result.single(strict=True)
            if not record["n"]:
                return False
            if previous is not None:
                result = await t.run(
                    "CREATE (v:WwSkillVersion) SET v = $row",
                    {
                        "row": {
                            "skill_id": str(previous.id),
                            "session_id": session_id,
                            "version": previous.version,
                            "replaced_at": to_micros(skill.updated_at),
                            "snapshot": previous.model_dump_json(),
                        }
                    },
                )
                await result.consume()
            return True

        return await self._db.write(tx)

    async def versions(self, session_id: str, skill_id: UUID) -> list[SkillVersion]:
        rows = await self._db.rows(
            "MATCH (v:WwSkillVersion {skill_id: $id}) WHERE v.session_id = $sid "
            "RETURN v.version AS version, v.replaced_at AS at, v.snapshot AS snapshot "
            "ORDER BY v.version",
            {"id": str(skill_id), "sid": session_id},
        )
        return [
            SkillVersion(
                version=r["version"],
                replaced_at=from_micros(r["at"]),
                skill=Skill.model_validate_json(r["snapshot"]),
            )
            for r in rows
        ]

    async def delete_skill(self, session_id: str, skill_id: UUID) -> bool:
        async def tx(t: AsyncManagedTransaction) -> bool:
            params = {"id": str(skill_id), "sid": session_id}
            result = await t.run(
                "MATCH (s:WwSkill {id: $id}) WHERE s.session_id = $sid "
                "DETACH DELETE s RETURN count(*) AS n",
                params,
            )
            record = await result.single(strict=True)
            if not record["n"]:
                return False
            # Versions and executions go with it.
            for label in ("WwSkillVersion", "WwSkillExecution"):
                result = await t.run(
                    f"MATCH (x:{label} {{skill_id: $id}}) WHERE x.session_id = $sid DELETE x",
                    params,
                )
                await result.consume()
            return True

        return await self._db.write(tx)

    async def delete_session(self, session_id: str) -> None:
        async def tx(t: AsyncManagedTransaction) -> None:
            for label in ("WwSkill", "WwSkillVersion", "WwSkillExecution"):
                result = await t.run(
                    f"MATCH (x:{label}) WHERE x.session_id = $sid DETACH DELETE x",
                    {"sid": session_id},
                )
                await result.consume()

        await self._db.write(tx)
        await self._db.drop_fulltext(kind_fts_index(_KIND, session_id))

    async def record_execution(
        self, session_id: str, skill: Skill, execution: SkillExecution
    ) -> bool:
        at = to_micros(execution.executed_at)

        async def tx(t: AsyncManagedTransaction) -> bool:
            result = await t.run(
                "MATCH (e:WwSkill {id: $id}) WHERE e.session_id = $sid "
                "SET e.successes = $successes, e.failures = $failures, "
                "e.execution_count = $count, e.last_executed = $at, "
                "e.access_count = $access_count, e.last_accessed = $at "
                f"WITH e {ACCESS_APPEND} RETURN count(*) AS n",
                {
                    "id": str(skill.id),
                    "sid": session_id,
                    "successes": skill.successes,
                    "failures": skill.failures,
                    "count": skill.execution_count,
                    "access_count": skill.access_count,
                    "at": at,
                    "cap": ACCESS_LOG_CAP,
                },
            )
            record = await result.single(strict=True)
            if record["n"] != 1:
                return False
            result = await t.run(
                "CREATE (x:WwSkillExecution) SET x = $row",
                {"row": _execution_props(execution, session_id, skill.id)},
            )
            await result.consume()
            return True

        return await self._db.write(tx)

    async def executions(self, session_id: str, skill_id: UUID, limit: int) -> list[SkillExecution]:
        rows = await self._db.rows(
            "MATCH (x:WwSkillExecution {skill_id: $id}) WHERE x.session_id = $sid "
            "RETURN x {.*} AS x ORDER BY x.executed_at DESC, x.id DESC LIMIT $n",
            {"id": str(skill_id), "sid": session_id, "n": limit},
        )
        return [_execution(r["x"]) for r in rows]

    # -- export and import ------------------------------------------------------------------
    async def replace_access_times(
        self, session_id: str, times: Mapping[UUID, Sequence[datetime]]
    ) -> None:
        await replace_access_times(self._db, "WwSkill", session_id, times)

    async def list_executions(
        self, session_id: str, limit: int, cursor: str | None
    ) -> ExecutionPage:
        after = "" if cursor is None else decode_cursor(cursor)[1]
        rows = await self._db.rows(
            "MATCH (x:WwSkillExecution) WHERE x.session_id = $sid AND x.id > $after "
            "RETURN x {.*} AS x ORDER BY x.id LIMIT $n",
            {"sid": session_id, "after": after, "n": limit + 1},
        )
        items = [_execution(r["x"]) for r in rows[:limit]]
        more = len(rows) > limit and items
        return ExecutionPage(items, encode_key(0, str(items[-1].id)) if more else None)

    async def restore_versions(self, session_id: str, versions: Sequence[SkillVersion]) -> int:
        rows: list[dict[str, Any]] = [
            {
                "skill_id": str(v.skill.id),
                "version": v.version,
                "replaced_at": to_micros(v.replaced_at),
                "snapshot": v.skill.model_dump_json(),
            }
            for v in versions
        ]

        async def tx(t: AsyncManagedTransaction) -> int:
            owned = await _session_skills(t, session_id, [r["skill_id"] for r in rows])
            keep = [r for r in rows if r["skill_id"] in owned]
            result = await t.run(
                "UNWIND $rows AS row MERGE (v:WwSkillVersion "
                "{skill_id: row.skill_id, version: row.version}) "
                "SET v.session_id = $sid, v.replaced_at = row.replaced_at, "
                "v.snapshot = row.snapshot",
                {"rows": keep, "sid": session_id},
            )
            await result.consume()
            return len(keep)

        return await self._db.write(tx) if rows else 0

    async def restore_executions(
        self, session_id: str, executions: Sequence[SkillExecution]
    ) -> int:
        rows = [_execution_props(e, session_id) for e in executions]

        async def tx(t: AsyncManagedTransaction) -> int:
            owned = await _session_skills(t, session_id, [r["skill_id"] for r in rows])
            keep = [r for r in rows if r["skill_id"] in owned]
            result = await t.run(
                "UNWIND $ids AS i MATCH (x:WwSkillExecution {id: i}) "
                "WHERE x.session_id <> $sid RETURN x.id AS id LIMIT 1",
                {"ids": [r["id"] for r in keep], "sid": session_id},
            )
            taken = await result.single()
            if taken is not None:
                raise IdConflictError(f"skill execution id {taken['id']} is already taken")
            result = await t.run(
                "UNWIND $rows AS row MERGE (x:WwSkillExecution {id: row.id}) SET x = row",
                {"rows": keep},
            )
            await result.consume()
            return len(keep)

        return await self._db.write(tx) if rows else 0

    async def _set_state(self, session_id: str, ids: Sequence[UUID], state: IndexState) -> None:
        if not ids:
            return
        await self._db.write(
            tx_consume(
                "UNWIND $ids AS i MATCH (s:WwSkill {id: i}) WHERE s.session_id = $sid "
                "SET s.index_state = $state",
                {"ids": _keys(ids), "sid": session_id, "state": state.value},
            )
        )

    async def mark_indexed(self, session_id: str, ids: Sequence[UUID]) -> None:
        await self._set_state(session_id, ids, IndexState.INDEXED)

    async def mark_pending(self, session_id: str, ids: Sequence[UUID]) -> None:
        await self._set_state(session_id, ids, IndexState.PENDING)

    async def pending_skills(self, session_id: str, limit: int) -> list[Skill]:
        rows = await self._db.rows(
            f"MATCH (s:WwSkill {{session_id: $sid, index_state: 'pending'}}) RETURN {_S} LIMIT $n",
            {"sid": session_id, "n": limit},
        )
        return [_skill(r["s"]) for r in rows]

    async def indexed_ids(self, session_id: str) -> set[UUID]:
        rows = await self._db.rows(
            "MATCH (s:WwSkill {session_id: $sid, index_state: 'indexed'}) RETURN s.id AS id",
            {"sid": session_id},
        )
        return {UUID(r["id"]) for r in rows}

    async def existing_ids(self, session_id: str, ids: Sequence[UUID]) -> set[UUID]:
        return await self.filter_ids(session_id, ids, SkillFilter(include_deprecated=True))

    async def list_sessions(self) -> list[str]:
        rows = await self._db.rows(
            "MATCH (s:WwSkill) RETURN DISTINCT s.session_id AS sid ORDER BY sid", {}
        )
        return [str(r["sid"]) for r in rows]

    async def keyword_search(
        self, session_id: str, query: str, flt: SkillFilter, limit: int
    ) -> list[ScoredId]:
        terms = keyword_terms(query)
        if not terms:
            return []
        where, params = _filter_cypher(flt)
        rows = await self._db.fulltext_search(
            kind_fts_index(_KIND, session_id),
            "CALL db.index.fulltext.queryNodes($index, $q) YIELD node AS s, score "
            f"WHERE s.session_id = $sid AND {where} "
            "RETURN s.id AS id, score ORDER BY score DESC, id LIMIT $n",
            {**params, "q": fts_query(terms), "sid": session_id, "n": limit},
        )
        return [ScoredId(UUID(r["id"]), float(r["score"])) for r in rows or []]

    async def filter_ids(self, session_id: str, ids: Sequence[UUID], flt: SkillFilter) -> set[UUID]:
        if not ids:
            return set()
        where, params = _filter_cypher(flt)
        rows = await self._db.rows(
            "UNWIND $ids AS i MATCH (s:WwSkill {id: i}) "
            f"WHERE s.session_id = $sid AND {where} RETURN s.id AS id",
            {**params, "ids": _keys(ids), "sid": session_id},
        )
        return {UUID(r["id"]) for r in rows}

    async def record_access(self, session_id: str, counts: dict[UUID, int], at: datetime) -> None:
        if not counts:
            return
        rows = [{"id": str(i), "n": n} for i, n in sorted(counts.items(), key=lambda x: str(x[0]))]
        await self._db.write(
            tx_consume(
                "UNWIND $rows AS u MATCH (e:WwSkill {id: u.id}) WHERE e.session_id = $sid "
                f"SET e.access_count = u.n, e.last_accessed = $at WITH e {ACCESS_APPEND}",
                {"rows": rows, "sid": session_id, "at": to_micros(at), "cap": ACCESS_LOG_CAP},
            )
        )

    async def access_times(
        self, session_id: str, ids: Sequence[UUID]
    ) -> dict[UUID, list[datetime]]:
        return await access_times(self._db, "WwSkill", session_id, ids)
