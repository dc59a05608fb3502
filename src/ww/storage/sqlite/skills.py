"""``SkillStore`` on the record store's SQLite file (skills, versions, executions)."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from typing import Any
from uuid import UUID

from ww.models import FSRSState
from ww.models.procedural import Skill, SkillExecution, SkillStep, SkillVersion
from ww.storage.memories import MemoryKind, SkillMethods, cut_page
from ww.storage.payload import from_micros, to_micros
from ww.storage.ports import IdConflictError
from ww.storage.ports.skills import ExecutionPage, SkillFilter
from ww.storage.sqlite.memfts import append_access
from ww.storage.sqlite.memories import SQLiteMemoryStore, rows_as
from ww.storage.sqlite.rows import fsrs_from_row, memory_tail, memory_tail_params, opt_ts

__all__ = ["SKILL_KIND", "SQLiteSkillStore"]

SKILL_COLUMNS = (
    "id, session_id, name, domain, task, trigger_pattern, steps, script, script_generated, "
    "successes, failures, execution_count, last_executed, version, deprecated, replaced_by, "
    "created_at, updated_at, stability, difficulty, last_review, reps, lapses, access_count, "
    "last_accessed, index_state"
)
_EXECUTION_COLUMNS = (
    "id, skill_id, skill_version, success, duration_ms, failed_step, error, executed_at"
)


def _fsrs(r: sqlite3.Row) -> FSRSState | None:
    # None for a Neo4j node written before skills had FSRS state: ``Skill`` gives the default.
    return None if r["last_review"] is None else fsrs_from_row(r)


def _row_to_skill(r: sqlite3.Row) -> Skill:
    successes, failures = r["successes"], r["failures"]
    return Skill(
        id=UUID(r["id"]),
        session_id=r["session_id"],
        name=r["name"],
        domain=r["domain"],
        task=r["task"],
        trigger_pattern=r["trigger_pattern"],
        steps=[SkillStep.model_validate(s) for s in json.loads(r["steps"])],
        script=r["script"],
        script_generated=bool(r["script_generated"]),
        successes=successes,
        failures=failures,
        success_rate=(successes + 1) / (successes + failures + 2),
        execution_count=r["execution_count"],
        last_executed=opt_ts(r["last_executed"]),
        version=r["version"],
        deprecated=bool(r["deprecated"]),
        replaced_by=UUID(r["replaced_by"]) if r["replaced_by"] else None,
        created_at=from_micros(r["created_at"]),
        updated_at=from_micros(r["updated_at"]),
        fsrs=_fsrs(r),
        **memory_tail(r),
    )


def _skill_params(s: Skill) -> tuple[Any, ...]:
    return (
        str(s.id),
        s.session_id,
        s.name,
        s.domain,
        s.task,
        s.trigger_pattern,
        json.dumps([st.model_dump() for st in s.steps], separators=(",", ":")),
        s.script,
        int(s.script_generated),
        s.successes,
        s.failures,
        s.execution_count,
        to_micros(s.last_executed) if s.last_executed else None,
        s.version,
        int(s.deprecated),
        str(s.replaced_by) if s.replaced_by else None,
        to_micros(s.created_at),
        to_micros(s.updated_at),
        *memory_tail_params(s),
    )


def _row_to_execution(r: sqlite3.Row) -> SkillExecution:
    return SkillExecution(
        id=UUID(r[0]),
        skill_id=UUID(r[1]),
        skill_version=r[2],
        success=bool(r[3]),
        duration_ms=r[4],
        failed_step=r[5],
        error=r[6],
        executed_at=from_micros(r[7]),
    )


def _in_session(c: sqlite3.Connection, session_id: str, skill_id: str) -> bool:
    found = c.execute(
        "SELECT 1 FROM skills WHERE id = ? AND session_id = ?", (skill_id, session_id)
    ).fetchone()
    return found is not None


def _keyword_text(s: Skill) -> str:
    return s.keyword_text


def _filter_sql(flt: SkillFilter) -> tuple[str, list[Any]]:
    clauses: list[str] = []
    params: list[Any] = []
    if flt.domain is not None:
        clauses.append("r.domain = ?")
        params.append(flt.domain)
    if not flt.include_deprecated:
        clauses.append("r.deprecated = 0")
    return (" AND ".join(clauses) or "1=1"), params


SKILL_KIND: MemoryKind[Skill] = MemoryKind(
    key="skl",
    noun="skill",
    table="skills",
    label="WwSkill",
    columns=SKILL_COLUMNS,
    order="created_at",
    from_row=_row_to_skill,
    to_params=_skill_params,
    keyword_text=_keyword_text,
)


class SQLiteSkillStore(SQLiteMemoryStore[Skill, SkillFilter], SkillMethods):
    """Skills with their versions and executions; the rest is shared."""

    _kind = SKILL_KIND
    _everything = SkillFilter(include_deprecated=True)

    def _filter_sql(self, flt: SkillFilter) -> tuple[str, list[Any]]:
        return _filter_sql(flt)

    async def update_skill(
        self, session_id: str, skill: Skill, previous: Skill | None = None
    ) -> bool:
        def snapshot(c: sqlite3.Connection) -> None:
            if previous is not None:
                c.execute(
                    "INSERT INTO skill_versions (skill_id, version, replaced_at, snapshot) "
                    "VALUES (?, ?, ?, ?)",
                    (
                        str(previous.id),
                        previous.version,
                        to_micros(skill.updated_at),
                        previous.model_dump_json(),
                    ),
                )

        return await self._update(session_id, skill, snapshot)

    async def versions(self, session_id: str, skill_id: UUID) -> list[SkillVersion]:
        return await self._read(
            lambda c: [
                SkillVersion(
                    version=r[0],
                    replaced_at=from_micros(r[1]),
                    skill=Skill.model_validate_json(r[2]),
                )
                for r in c.execute(
                    "SELECT v.version, v.replaced_at, v.snapshot FROM skill_versions v "
                    "JOIN skills s ON s.id = v.skill_id WHERE s.session_id = ? AND s.id = ? "
                    "ORDER BY v.version",
                    (session_id, str(skill_id)),
                )
            ]
        )

    async def record_execution(
        self, session_id: str, skill: Skill, execution: SkillExecution
    ) -> bool:
        def tx(c: sqlite3.Connection) -> bool:
            n = c.execute(
                "UPDATE skills SET successes = ?, failures = ?, execution_count = ?, "
                "last_executed = ?, access_count = ?, last_accessed = ? "
                "WHERE id = ? AND session_id = ?",
                (
                    skill.successes,
                    skill.failures,
                    skill.execution_count,
                    to_micros(execution.executed_at),
                    skill.access_count,
                    to_micros(execution.executed_at),
                    str(skill.id),
                    session_id,
                ),
            ).rowcount
            if n != 1:
                return False
            c.execute(
                "INSERT INTO skill_executions (id, skill_id, session_id, skill_version, success, "
                "duration_ms, failed_step, error, executed_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    str(execution.id),
                    str(skill.id),
                    session_id,
                    execution.skill_version,
                    int(execution.success),
                    execution.duration_ms,
                    execution.failed_step,
                    execution.error,
                    to_micros(execution.executed_at),
                ),
            )
            append_access(c, session_id, [skill.id], execution.executed_at)
            return True

        return await self._write(tx)

    async def executions(self, session_id: str, skill_id: UUID, limit: int) -> list[SkillExecution]:
        return await self._read(
            rows_as(
                _row_to_execution,
                f"SELECT {_EXECUTION_COLUMNS} FROM skill_executions WHERE session_id = ? "
                "AND skill_id = ? ORDER BY executed_at DESC, id DESC LIMIT ?",
                session_id,
                str(skill_id),
                limit,
            )
        )

    # -- export and import ------------------------------------------------------------------
    async def list_executions(
        self, session_id: str, limit: int, cursor: str | None
    ) -> ExecutionPage:
        source = f"{_EXECUTION_COLUMNS} FROM skill_executions"
        rows = await self._read(lambda c: self._id_page(c, source, session_id, limit, cursor))
        return ExecutionPage(*cut_page([_row_to_execution(r) for r in rows], limit))

    async def restore_versions(self, session_id: str, versions: Sequence[SkillVersion]) -> int:
        rows = [
            (str(v.skill.id), v.version, to_micros(v.replaced_at), v.skill.model_dump_json())
            for v in versions
        ]

        def tx(c: sqlite3.Connection) -> int:
            written = 0
            for row in rows:
                if _in_session(c, session_id, row[0]):
                    c.execute(
                        "INSERT INTO skill_versions (skill_id, version, replaced_at, snapshot) "
                        "VALUES (?, ?, ?, ?) ON CONFLICT (skill_id, version) DO UPDATE SET "
                        "replaced_at = excluded.replaced_at, snapshot = excluded.snapshot",
                        row,
                    )
                    written += 1
            return written

        return await self._write(tx)

    async def restore_executions(
        self, session_id: str, executions: Sequence[SkillExecution]
    ) -> int:
        def tx(c: sqlite3.Connection) -> int:
            written = 0
            for e in executions:
                if not _in_session(c, session_id, str(e.skill_id)):
                    continue
                owner = c.execute(
                    "SELECT session_id FROM skill_executions WHERE id = ?", (str(e.id),)
                ).fetchone()
                if owner is not None and owner[0] != session_id:
                    raise IdConflictError(f"skill execution id {e.id} is already taken")
                c.execute(
                    "INSERT OR REPLACE INTO skill_executions (id, skill_id, session_id, "
                    "skill_version, success, duration_ms, failed_step, error, executed_at) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        str(e.id),
                        str(e.skill_id),
                        session_id,
                        e.skill_version,
                        int(e.success),
                        e.duration_ms,
                        e.failed_step,
                        e.error,
                        to_micros(e.executed_at),
                    ),
                )
                written += 1
            return written

        return await self._write(tx)
