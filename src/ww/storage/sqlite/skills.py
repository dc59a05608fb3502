"""``SkillStore`` on the record store's SQLite file (skills, versions, executions)."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

from ww.models import IndexState
from ww.models.procedural import Skill, SkillExecution, SkillStep, SkillVersion
from ww.storage.payload import from_micros, to_micros
from ww.storage.ports import IdConflictError, ScoredId
from ww.storage.ports.skills import ExecutionPage, SkillFilter, SkillPage
from ww.storage.sqlite.db import SQLiteDatabase
from ww.storage.sqlite.entities import encode_key
from ww.storage.sqlite.memfts import (
    access_times,
    append_access,
    kind_fts_delete,
    kind_fts_drop,
    kind_fts_put,
    kind_fts_search,
    replace_access,
)
from ww.storage.sqlite.rows import decode_cursor

__all__ = ["SQLiteSkillStore"]

_KIND = "skl"
SKILL_COLUMNS = (
    "id, session_id, name, domain, task, trigger_pattern, steps, script, script_generated, "
    "successes, failures, execution_count, last_executed, version, deprecated, replaced_by, "
    "created_at, updated_at, access_count, last_accessed, index_state"
)
_N_COLUMNS = 21
_CHUNK = 500
_EXECUTION_COLUMNS = (
    "id, skill_id, skill_version, success, duration_ms, failed_step, error, executed_at"
)


def _opt_ts(value: int | None) -> datetime | None:
    return from_micros(value) if value is not None else None


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
        last_executed=_opt_ts(r["last_executed"]),
        version=r["version"],
        deprecated=bool(r["deprecated"]),
        replaced_by=UUID(r["replaced_by"]) if r["replaced_by"] else None,
        created_at=from_micros(r["created_at"]),
        updated_at=from_micros(r["updated_at"]),
        access_count=r["access_count"],
        last_accessed=_opt_ts(r["last_accessed"]),
        index_state=r["index_state"],
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
        s.access_count,
        to_micros(s.last_accessed) if s.last_accessed else None,
        s.index_state.value,
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
    steps = " ".join(f"{st.action} {st.tool or ''}" for st in s.steps)
    return f"{s.name} {s.task} {s.trigger_pattern or ''} {steps}"


def _filter_sql(flt: SkillFilter) -> tuple[str, list[Any]]:
    clauses: list[str] = []
    params: list[Any] = []
    if flt.domain is not None:
        clauses.append("r.domain = ?")
        params.append(flt.domain)
    if not flt.include_deprecated:
        clauses.append("r.deprecated = 0")
    return (" AND ".join(clauses) or "1=1"), params


class SQLiteSkillStore:
    """Shares ``db`` with the record store, which owns its lifecycle (open/close)."""

    def __init__(self, db: SQLiteDatabase) -> None:
        self._read = db.read
        self._write = db.write

    async def insert_skill(self, session_id: str, skill: Skill) -> None:
        if skill.session_id != session_id:
            raise ValueError("skill belongs to another session")
        marks = ", ".join("?" * _N_COLUMNS)

        def tx(c: sqlite3.Connection) -> None:
            try:
                cur = c.execute(
                    f"INSERT INTO skills ({SKILL_COLUMNS}) VALUES ({marks})", _skill_params(skill)
                )
            except sqlite3.IntegrityError as exc:  # the only unique key is the id
                raise IdConflictError(f"skill id {skill.id} is already taken") from exc
            assert cur.lastrowid is not None
            kind_fts_put(c, _KIND, session_id, cur.lastrowid, _keyword_text(skill))
            append_access(c, session_id, [skill.id], skill.created_at)

        await self._write(tx)

    async def get_skill(self, session_id: str, skill_id: UUID) -> Skill | None:
        return (await self.get_skills(session_id, [skill_id])).get(skill_id)

    async def get_skills(self, session_id: str, ids: Sequence[UUID]) -> dict[UUID, Skill]:
        if not ids:
            return {}
        keys = [str(i) for i in dict.fromkeys(ids)]

        def q(c: sqlite3.Connection) -> dict[UUID, Skill]:
            out: dict[UUID, Skill] = {}
            for start in range(0, len(keys), _CHUNK):
                chunk = keys[start : start + _CHUNK]
                marks = ",".join("?" * len(chunk))
                for r in c.execute(
                    f"SELECT {SKILL_COLUMNS} FROM skills WHERE session_id = ? AND id IN ({marks})",
                    (session_id, *chunk),
                ):
                    skill = _row_to_skill(r)
                    out[skill.id] = skill
            return out

        return await self._read(q)

    async def list_skills(
        self, session_id: str, flt: SkillFilter, limit: int, cursor: str | None
    ) -> SkillPage:
        where, params = _filter_sql(flt)
        if cursor is not None:
            ts, ident = decode_cursor(cursor)
            where += " AND (r.created_at, r.id) < (?, ?)"
            params += [ts, ident]

        def q(c: sqlite3.Connection) -> SkillPage:
            rows = c.execute(
                f"SELECT {SKILL_COLUMNS} FROM skills r WHERE r.session_id = ? AND {where} "
                "ORDER BY r.created_at DESC, r.id DESC LIMIT ?",
                (session_id, *params, limit + 1),
            ).fetchall()
            items = [_row_to_skill(r) for r in rows[:limit]]
            more = len(rows) > limit and items
            nxt = encode_key(to_micros(items[-1].created_at), str(items[-1].id)) if more else None
            return SkillPage(items, nxt)

        return await self._read(q)

    async def update_skill(
        self, session_id: str, skill: Skill, previous: Skill | None = None
    ) -> bool:
        if skill.session_id != session_id:
            raise ValueError("skill belongs to another session")
        params = _skill_params(skill)
        columns = [c.strip() for c in SKILL_COLUMNS.split(",")][2:]
        assignments = ", ".join(f"{col} = ?" for col in columns)

        def tx(c: sqlite3.Connection) -> bool:
            row = c.execute(
                "SELECT rowid FROM skills WHERE id = ? AND session_id = ?",
                (str(skill.id), session_id),
            ).fetchone()
            if row is None:
                return False
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
            c.execute(f"UPDATE skills SET {assignments} WHERE rowid = ?", (*params[2:], row[0]))
            kind_fts_put(c, _KIND, session_id, row[0], _keyword_text(skill))
            return True

        return await self._write(tx)

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

    async def delete_skill(self, session_id: str, skill_id: UUID) -> bool:
        def tx(c: sqlite3.Connection) -> bool:
            row = c.execute(
                "SELECT rowid FROM skills WHERE id = ? AND session_id = ?",
                (str(skill_id), session_id),
            ).fetchone()
            if row is None:
                return False
            kind_fts_delete(c, _KIND, session_id, row[0])
            c.execute("DELETE FROM access_log WHERE memory_id = ?", (str(skill_id),))
            # Versions and executions go with it (ON DELETE CASCADE).
            c.execute("DELETE FROM skills WHERE rowid = ?", (row[0],))
            return True

        return await self._write(tx)

    async def delete_session(self, session_id: str) -> None:
        def tx(c: sqlite3.Connection) -> None:
            kind_fts_drop(c, _KIND, session_id)
            c.execute(
                "DELETE FROM access_log WHERE session_id = ? AND memory_id IN "
                "(SELECT id FROM skills WHERE session_id = ?)",
                (session_id, session_id),
            )
            c.execute("DELETE FROM skills WHERE session_id = ?", (session_id,))

        await self._write(tx)

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
            lambda c: [
                _row_to_execution(r)
                for r in c.execute(
                    f"SELECT {_EXECUTION_COLUMNS} FROM skill_executions WHERE session_id = ? "
                    "AND skill_id = ? ORDER BY executed_at DESC, id DESC LIMIT ?",
                    (session_id, str(skill_id), limit),
                )
            ]
        )

    # -- export and import ------------------------------------------------------------------
    async def replace_access_times(
        self, session_id: str, times: Mapping[UUID, Sequence[datetime]]
    ) -> None:
        await self._write(lambda c: replace_access(c, session_id, "skills", times))

    async def list_executions(
        self, session_id: str, limit: int, cursor: str | None
    ) -> ExecutionPage:
        after = "" if cursor is None else decode_cursor(cursor)[1]

        def q(c: sqlite3.Connection) -> ExecutionPage:
            rows = c.execute(
                f"SELECT {_EXECUTION_COLUMNS} FROM skill_executions WHERE session_id = ? "
                "AND id > ? ORDER BY id LIMIT ?",
                (session_id, after, limit + 1),
            ).fetchall()
            items = [_row_to_execution(r) for r in rows[:limit]]
            more = len(rows) > limit and items
            return ExecutionPage(items, encode_key(0, str(items[-1].id)) if more else None)

        return await self._read(q)

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

    async def _set_state(self, session_id: str, ids: Sequence[UUID], state: IndexState) -> None:
        rows = [(state.value, session_id, str(i)) for i in ids]
        await self._write(
            lambda c: c.executemany(
                "UPDATE skills SET index_state = ? WHERE session_id = ? AND id = ?", rows
            )
        )

    async def mark_indexed(self, session_id: str, ids: Sequence[UUID]) -> None:
        await self._set_state(session_id, ids, IndexState.INDEXED)

    async def mark_pending(self, session_id: str, ids: Sequence[UUID]) -> None:
        await self._set_state(session_id, ids, IndexState.PENDING)

    async def pending_skills(self, session_id: str, limit: int) -> list[Skill]:
        return await self._read(
            lambda c: [
                _row_to_skill(r)
                for r in c.execute(
                    f"SELECT {SKILL_COLUMNS} FROM skills WHERE session_id = ? "
                    "AND index_state = 'pending' LIMIT ?",
                    (session_id, limit),
                )
            ]
        )

    async def indexed_ids(self, session_id: str) -> set[UUID]:
        return await self._read(
            lambda c: {
                UUID(r[0])
                for r in c.execute(
                    "SELECT id FROM skills WHERE session_id = ? AND index_state = 'indexed'",
                    (session_id,),
                )
            }
        )

    async def existing_ids(self, session_id: str, ids: Sequence[UUID]) -> set[UUID]:
        return await self.filter_ids(session_id, ids, SkillFilter(include_deprecated=True))

    async def list_sessions(self) -> list[str]:
        return await self._read(
            lambda c: [r[0] for r in c.execute("SELECT DISTINCT session_id FROM skills")]
        )

    async def keyword_search(
        self, session_id: str, query: str, flt: SkillFilter, limit: int
    ) -> list[ScoredId]:
        where, params = _filter_sql(flt)
        rows = await self._read(
            lambda c: kind_fts_search(c, _KIND, session_id, query, "skills", where, params, limit)
        )
        return [ScoredId(i, s) for i, s in rows]

    async def filter_ids(self, session_id: str, ids: Sequence[UUID], flt: SkillFilter) -> set[UUID]:
        if not ids:
            return set()
        where, params = _filter_sql(flt)
        keys = [str(i) for i in dict.fromkeys(ids)]

        def q(c: sqlite3.Connection) -> set[UUID]:
            out: set[UUID] = set()
            for start in range(0, len(keys), _CHUNK):
                chunk = keys[start : start + _CHUNK]
                marks = ",".join("?" * len(chunk))
                out |= {
                    UUID(r[0])
                    for r in c.execute(
                        f"SELECT r.id FROM skills r WHERE r.session_id = ? "
                        f"AND r.id IN ({marks}) AND {where}",
                        (session_id, *chunk, *params),
                    )
                }
            return out

        return await self._read(q)

    async def record_access(self, session_id: str, counts: dict[UUID, int], at: datetime) -> None:
        ts = to_micros(at)
        rows = [(n, ts, str(i), session_id) for i, n in counts.items()]

        def tx(c: sqlite3.Connection) -> None:
            c.executemany(
                "UPDATE skills SET access_count = ?, last_accessed = ? "
                "WHERE id = ? AND session_id = ?",
                rows,
            )
            append_access(c, session_id, list(counts), at)

        await self._write(tx)

    async def access_times(
        self, session_id: str, ids: Sequence[UUID]
    ) -> dict[UUID, list[datetime]]:
        return await self._read(lambda c: access_times(c, session_id, ids))
