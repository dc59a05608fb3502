"""The reconciler's two index-state marks, shared by every store that keeps an index state
(episode records and each kind of memory, on each backend)."""

from __future__ import annotations

from collections.abc import Sequence
from uuid import UUID

from ww.models import IndexState

__all__ = ["IndexStateMarks"]


class IndexStateMarks:
    """``mark_indexed`` and ``mark_pending`` on the backend's ``_set_index_state``."""

    async def _set_index_state(
        self, session_id: str, ids: Sequence[UUID], state: IndexState
    ) -> None:
        raise NotImplementedError

    async def mark_indexed(self, session_id: str, ids: Sequence[UUID]) -> None:
        await self._set_index_state(session_id, ids, IndexState.INDEXED)

    async def mark_pending(self, session_id: str, ids: Sequence[UUID]) -> None:
        await self._set_index_state(session_id, ids, IndexState.PENDING)
