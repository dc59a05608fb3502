"""What the store of every kind of memory (entities, skills) answers the same way: index
state for the reconciler, keyword search and filters for recall, access times, and the
session's deletion. Each kind's port adds its own methods (``entities``, ``skills``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Protocol, TypeVar
from uuid import UUID

from ww.storage.ports.vectors import ScoredId

__all__ = ["AccessLog", "MemoryStore"]

F_contra = TypeVar("F_contra", contravariant=True)


class AccessLog(Protocol):
    """The access times a store keeps per memory (ACT-R, the eligibility trace, the
    lability window read them; an export carries them)."""

    async def access_times(
        self, session_id: str, ids: Sequence[UUID]
    ) -> dict[UUID, list[datetime]]:
        """The newest ``ACCESS_LOG_CAP`` access times per id, newest first."""

    async def replace_access_times(
        self, session_id: str, times: Mapping[UUID, Sequence[datetime]]
    ) -> None:
        """Make each id's access times exactly ``times[id]`` (the newest ``ACCESS_LOG_CAP``
        kept); ids that are not memories of the kind in the session are ignored. Used by
        import."""


class MemoryStore(AccessLog, Protocol[F_contra]):
    """``F_contra`` is the kind's filter."""

    async def delete_session(self, session_id: str) -> None: ...

    async def mark_indexed(self, session_id: str, ids: Sequence[UUID]) -> None: ...
    async def mark_pending(self, session_id: str, ids: Sequence[UUID]) -> None: ...
    async def indexed_ids(self, session_id: str) -> set[UUID]: ...
    async def indexed_count(self, session_id: str) -> int:
        """``len(indexed_ids(session_id))`` without reading the ids."""

    async def existing_ids(self, session_id: str, ids: Sequence[UUID]) -> set[UUID]: ...
    async def list_sessions(self) -> list[str]:
        """Sessions holding at least one memory of the kind."""

    async def filter_ids(
        self, session_id: str, ids: Sequence[UUID], flt: F_contra
    ) -> set[UUID]: ...
    async def keyword_search(
        self, session_id: str, query: str, flt: F_contra, limit: int
    ) -> list[ScoredId]:
        """Best keyword matches first, larger is better: over an entity's name, summary and
        details, a skill's name, task, trigger and steps."""
