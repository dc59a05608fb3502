"""The port of procedural memory: skills, their previous versions, executions and access
times. Every method takes the session; an id of another session is simply not found."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol
from uuid import UUID

from ww.models.procedural import Skill, SkillExecution, SkillVersion
from ww.storage.ports.entities import EntityAccess
from ww.storage.ports.memories import MemoryStore

__all__ = ["ExecutionPage", "SkillAccess", "SkillFilter", "SkillPage", "SkillStore"]

# What a recall with learning changes on one skill: the same fields as on an entity.
SkillAccess = EntityAccess


@dataclass(frozen=True, slots=True)
class SkillFilter:
    domain: str | None = None
    include_deprecated: bool = False


@dataclass(frozen=True, slots=True)
class SkillPage:
    items: list[Skill]
    next_cursor: str | None


@dataclass(frozen=True, slots=True)
class ExecutionPage:
    items: list[SkillExecution]
    next_cursor: str | None


class SkillStore(MemoryStore[SkillFilter], Protocol):
    async def insert_skill(self, session_id: str, skill: Skill) -> None:
        """Insert a new skill; its creation counts as its first access. Raises
        ``IdConflictError`` when the id is taken (by this session or another)."""

    async def get_skill(self, session_id: str, skill_id: UUID) -> Skill | None: ...
    async def get_skills(self, session_id: str, ids: Sequence[UUID]) -> dict[UUID, Skill]: ...
    async def list_skills(
        self, session_id: str, flt: SkillFilter, limit: int, cursor: str | None
    ) -> SkillPage:
        """Newest first (created_at, then id); ``cursor`` is opaque and comes from a page."""

    async def update_skill(
        self, session_id: str, skill: Skill, previous: Skill | None = None
    ) -> bool:
        """Replace the skill's row; with ``previous`` that version is kept in its history
        in the same transaction. False when the skill is not there."""

    async def versions(self, session_id: str, skill_id: UUID) -> list[SkillVersion]:
        """Previous versions, oldest first."""

    async def delete_skill(self, session_id: str, skill_id: UUID) -> bool: ...

    async def record_execution(
        self, session_id: str, skill: Skill, execution: SkillExecution
    ) -> bool:
        """Store the execution and the skill's new counters in one transaction; the
        execution counts as an access."""

    async def executions(self, session_id: str, skill_id: UUID, limit: int) -> list[SkillExecution]:
        """Newest first."""

    async def pending_skills(self, session_id: str, limit: int) -> list[Skill]: ...
    async def record_access(
        self, session_id: str, updates: Sequence[SkillAccess], at: datetime
    ) -> None:
        """Store each skill's new FSRS state and access count, and append ``at`` to its
        access times."""

    # -- export and import: exact copies, no side effects -----------------------------------
    async def list_executions(
        self, session_id: str, limit: int, cursor: str | None
    ) -> ExecutionPage:
        """Every execution of the session's skills, by id; ``cursor`` comes from a page."""

    async def restore_versions(self, session_id: str, versions: Sequence[SkillVersion]) -> int:
        """Insert or replace previous versions (keyed by ``skill.id`` and ``version``) of the
        session's skills in one transaction; versions of other skills are skipped. Returns
        how many were written."""

    async def restore_executions(
        self, session_id: str, executions: Sequence[SkillExecution]
    ) -> int:
        """Insert or replace executions by id, without touching the skills' counters or
        access times; executions of skills outside the session are skipped. Raises
        ``IdConflictError`` when an id belongs to another session. Returns how many were
        written."""
