"""What every ``VectorIndex`` does the same way before its engine is reached.

The argument checks (an empty batch is a no-op, a payload of another session is refused)
and the search loop that puts hits in one order (``ww.storage.ranking``) are written once
here; a backend implements the ``_`` methods against its own client.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection, Sequence
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from ww.models import EpisodeFilter
from ww.storage.ports import ScoredId, Vector, VectorItem, check_vector_items
from ww.storage.ranking import top_hits

__all__ = [
    "PAYLOAD_INDEXES",
    "Fetch",
    "NothingToOptimize",
    "Search",
    "VectorIndexBase",
    "as_uuid",
]

# The payload fields both Qdrant engines index, with their kind: every filter of
# ``ww.storage.payload.filter_terms`` and the session.
PAYLOAD_INDEXES: tuple[tuple[str, bool], ...] = (  # (field, holds an integer)
    ("session_id", False),
    ("memory_type", False),
    ("timestamp", True),
    ("outcome", False),
    ("project", False),
    ("speaker", False),
    ("archived", True),
)

# The engine's top ``n`` hits (any order among equal scores).
Fetch = Callable[[int], Awaitable[list[ScoredId]]]


@dataclass(frozen=True, slots=True)
class Search:
    """One ``VectorIndex.search`` call; ``within``, when not None, is never empty."""

    session_id: str
    vector: Vector
    flt: EpisodeFilter
    within: Collection[UUID] | None


def as_uuid(point_id: Any) -> UUID:
    return point_id if isinstance(point_id, UUID) else UUID(str(point_id))


class VectorIndexBase:
    _dimension: int

    @property
    def dimension(self) -> int:
        return self._dimension

    async def upsert(self, session_id: str, items: Sequence[VectorItem]) -> None:
        if not items:
            return
        check_vector_items(session_id, items, self._dimension)
        await self._upsert(session_id, items)

    async def search(
        self,
        session_id: str,
        vector: Vector,
        flt: EpisodeFilter,
        limit: int,
        within: Collection[UUID] | None = None,
    ) -> list[ScoredId]:
        """Cosine similarity, best first, ties by id; ``within`` restricts the search to
        those ids."""
        # The filter is built (and a bad one refused) even when ``within`` is empty.
        fetch = self._searcher(Search(session_id, vector, flt, within or None))
        if within is not None and not within:
            return []
        return await top_hits(fetch, limit)

    async def get_vectors(self, session_id: str, ids: Sequence[UUID]) -> dict[UUID, Vector]:
        if not ids:
            return {}
        return await self._get_vectors(session_id, ids)

    async def set_payload(self, session_id: str, item_id: UUID, payload: dict[str, Any]) -> None:
        if payload.get("session_id", session_id) != session_id:
            raise ValueError("payload belongs to another session")
        await self._set_payload(session_id, item_id, payload)

    async def delete(self, session_id: str, ids: Sequence[UUID]) -> None:
        if not ids:
            return
        await self._delete(session_id, ids)

    # -- what a backend implements ----------------------------------------------------------
    async def _upsert(self, session_id: str, items: Sequence[VectorItem]) -> None:
        raise NotImplementedError

    def _searcher(self, q: Search) -> Fetch:
        """The engine's search for ``q``."""
        raise NotImplementedError

    async def _get_vectors(self, session_id: str, ids: Sequence[UUID]) -> dict[UUID, Vector]:
        raise NotImplementedError

    async def _set_payload(self, session_id: str, item_id: UUID, payload: dict[str, Any]) -> None:
        raise NotImplementedError

    async def _delete(self, session_id: str, ids: Sequence[UUID]) -> None:
        raise NotImplementedError


class NothingToOptimize:
    """For an engine with no index for the engine to build (a Qdrant server indexes in the
    background, Neo4j vectors are scanned): ``optimize`` has nothing to do, ``unindexed``
    is always 0, so the engine never schedules ``optimize``. Both still fail once closed."""

    def _require(self) -> object:
        raise NotImplementedError

    async def optimize(self) -> bool:
        self._require()
        return False

    async def unindexed(self) -> int:
        self._require()
        return 0
