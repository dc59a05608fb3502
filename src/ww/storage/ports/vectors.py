"""The vector index port: nearest-neighbour search over memory vectors, filtered inside the
index by the session and the filterable payload fields (``ww.storage.payload``).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any, Protocol
from uuid import UUID

import numpy as np
import numpy.typing as npt

from ww.models import EpisodeFilter

__all__ = ["PART_KEYS", "ScoredId", "Vector", "VectorIndex", "VectorItem", "check_vector_items"]

Vector = npt.NDArray[np.float32]


@dataclass(frozen=True, slots=True)
class ScoredId:
    id: UUID
    score: float


@dataclass(frozen=True, slots=True)
class VectorItem:
    id: UUID
    vector: Vector
    payload: dict[str, Any]
    # Further vectors of the same memory: the windows of a long text after the first. A
    # tuple replaces the parts the memory has (empty: none); None leaves them as they are
    # (a vector moved by reconsolidation keeps its parts).
    parts: tuple[Vector, ...] | None = None


# The payload keys that mark a part, set by the index itself: no memory's payload may hold them.
PART_KEYS = ("part_of", "part")


def check_vector_items(session_id: str, items: Sequence[VectorItem], dimension: int) -> None:
    """What every ``VectorIndex.upsert`` refuses before it writes anything: an item whose
    payload names another session or a part's keys, or a vector (main or part) of the wrong
    shape."""
    for item in items:
        if item.payload.get("session_id") != session_id:
            raise ValueError("vector payload belongs to another session")
        if any(key in item.payload for key in PART_KEYS):
            raise ValueError("vector payload may not set part_of or part")
        for vector in (item.vector, *(item.parts or ())):
            if vector.shape != (dimension,):
                raise ValueError(f"vector has shape {vector.shape}, not ({dimension},)")


class VectorIndex(Protocol):
    """Nearest-neighbour search over memory vectors, filtered in the index."""

    async def open(self) -> None: ...
    async def close(self) -> None: ...
    async def check(self) -> None: ...

    @property
    def dimension(self) -> int: ...

    async def upsert(self, session_id: str, items: Sequence[VectorItem]) -> None: ...
    async def search(
        self,
        session_id: str,
        vector: Vector,
        flt: EpisodeFilter,
        limit: int,
        within: Collection[UUID] | None = None,
    ) -> list[ScoredId]:
        """Cosine similarity, best first; ``within`` restricts the search to those ids.

        Each memory comes at most once, under its own id, scored by the best of its main
        vector and its parts; ``limit`` counts memories."""

    async def get_vectors(self, session_id: str, ids: Sequence[UUID]) -> dict[UUID, Vector]: ...
    async def set_payload(
        self, session_id: str, item_id: UUID, payload: dict[str, Any]
    ) -> None: ...
    async def delete(self, session_id: str, ids: Sequence[UUID]) -> None: ...
    async def delete_session(self, session_id: str) -> None: ...
    async def ids(self, session_id: str) -> set[UUID]: ...
    async def count(self, session_id: str) -> int: ...
    async def optimize(self) -> bool:
        """Build indexes; run off the request path. True when anything changed."""

    async def unindexed(self) -> int:
        """How many vectors are searched by exact scan until ``optimize`` runs."""
