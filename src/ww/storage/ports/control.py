"""The control port: runtime flag overrides, the emergency level, and the audit of changes.

One state for the whole deployment, kept in the record store's database so every worker and
every restart sees it. Each change is one atomic step that also bumps ``version`` and appends
an audit entry whose ``id`` is that new version: a worker polls ``version`` (one small read)
and reloads the state only when it moved, and audit ids are unique and in order of change.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from ww.models.control import AuditKind, Level

__all__ = ["AuditKind", "AuditRecord", "ControlState", "ControlStore", "Emergency", "Level"]


@dataclass(frozen=True, slots=True)
class Emergency:
    level: Level = Level.NONE
    reason: str | None = None
    # When and by whom (a principal id) the level was last set; None before any change.
    at: datetime | None = None
    by: str | None = None


@dataclass(frozen=True, slots=True)
class ControlState:
    version: int
    # Flags set at run time, by name; a flag absent here keeps its start value.
    flags: Mapping[str, bool]
    emergency: Emergency


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """One change: ``name`` is the flag (or ``emergency``); ``old``/``new`` are ``true`` /
    ``false`` for a flag and the level for an emergency."""

    id: int
    at: datetime
    who: str
    kind: AuditKind
    name: str
    old: str
    new: str
    reason: str | None = None


class ControlStore(Protocol):
    async def version(self) -> int:
        """How many changes were ever made (0 for a fresh store): cheap, polled often."""

    async def state(self) -> ControlState: ...

    async def set_flag(
        self, name: str, enabled: bool, *, start: bool, who: str, at: datetime
    ) -> bool:
        """Store ``enabled`` as the flag's runtime value and audit the change; answer the
        value it replaced (the stored one, else ``start``)."""

    async def set_emergency(
        self, level: Level, reason: str | None, *, who: str, at: datetime
    ) -> Emergency:
        """Set the level and its reason and audit the change; answer the one replaced."""

    async def audit(self, limit: int, before: int | None = None) -> list[AuditRecord]:
        """Up to ``limit`` entries, newest first, with ids below ``before`` when given."""
