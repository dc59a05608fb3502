"""``SkillStore`` on the Neo4j record store's database.

Skills are ``:WwSkill`` nodes with the SQLite store's column encoding; previous versions are
``:WwSkillVersion`` and executions ``:WwSkillExecution`` nodes keyed by ``skill_id``. The
capped access-time log is a list property on the skill node, and keyword search uses one
full-text index per session, as for entities (neo4j/entities.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from uuid import UUID

from neo4j import AsyncManagedTransaction

from ww.models.procedural import Skill, SkillExecution, SkillVersion
from ww.storage.memories import SkillMethods, cut_page
from ww.storage.neo4j.memories import Neo4jMemoryStore
from ww.storage.neo4j.rows import ACCESS_APPEND
from ww.storage.payload import from_micros, to_micros
from ww.storage.ports import IdConflictError
from ww.storage.ports.entities import ACCESS_LOG_CAP
from ww.storage.ports.skills import ExecutionPage, SkillFilter
from ww.storage.sqlite.skills import SKILL_KIND

__all__ = ["Neo4jSkillStore"]


def _filter_cypher(flt: SkillFilter) -> tuple[str, dict[str, Any]]:
    clauses: list[str] = []
    params: dict[str, Any] = {}
    if flt.domain is not None:
        clauses.append("e.domain = $f_domain")
        params["f_domain"] = flt.domain
    if not flt.include_deprecated:
        clauses.append("e.deprecated = 0")
    return (" AND ".join(clauses) or "true"), params


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


class Neo4jSkillStore(Neo4jMemoryStore[Skill, SkillFilter], SkillMethods):
    """Skills with their versions (``:WwSkillVersion``) and executions
    (``:WwSkillExecution``, both keyed by ``skill_id``); the rest is shared."""

    _owned = ("WwSkillVersion", "WwSkillExecution")
    _owner_key = "skill_id"

    _kind = SKILL_KIND
    _everything = SkillFilter(include_deprecated=True)

    def _filter_cypher(self, flt: SkillFilter) -> tuple[str, dict[str, Any]]:
        return _filter_cypher(flt)

    async def update_skill(
        self, session_id: str, skill: Skill, previous: Skill | None = None
    ) -> bool:
        async def snapshot(t: AsyncManagedTransaction) -> None:
            if previous is None:
                return
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

        return await self._update(session_id, skill, snapshot)

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
    async def list_executions(
        self, session_id: str, limit: int, cursor: str | None
    ) -> ExecutionPage:
        rows = await self._id_page("(x:WwSkillExecution)", session_id, limit, cursor)
        return ExecutionPage(*cut_page([_execution(r) for r in rows], limit))

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
