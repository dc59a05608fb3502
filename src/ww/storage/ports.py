"""The two ports the engine talks to: a record store and a vector index.

Every method takes the session it acts in; nothing reads across sessions. A memory of
another session is simply not found. Each backend implements a port completely and the
contract suite in ``tests/contract`` runs against every backend.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol
from uuid import UUID

import numpy as np
import numpy.typing as npt

from ww.models import Episode, EpisodeFilter, FSRSState, SessionStats

__all__ = [
    "AccessUpdate",
    "CandidateRow",
    "EpisodePage",
    "InvalidCursorError",
    "RecordStore",
    "ScoredId",
    "StoreUnavailableError",
    "VectorIndex",
    "VectorItem",
]

Vector = npt.NDArray[np.float32]


class StoreUnavailableError(RuntimeError):
    """A backing store cannot serve the call right now (maps to HTTP 503)."""

    def __init__(self, component: str, message: str) -> None:
        super().__init__(f"{component}: {message}")
        self.component = component


class InvalidCursorError(ValueError):
    """A pagination cursor that no page of this store produced."""


@dataclass(frozen=True, slots=True)
class ScoredId:
    id: UUID
    score: float


@dataclass(frozen=True, slots=True)
class CandidateRow:
    """The few fields recall scores a candidate on, read without building an Episode."""

    id: UUID
    timestamp: datetime
    importance: float
    speaker: str | None
    stability: float
    last_review: datetime


@dataclass(frozen=True, slots=True)
class VectorItem:
    id: UUID
    vector: Vector
    payload: dict[str, Any]


@dataclass(frozen=True, slots=True)
class AccessUpdate:
    """What a recall with learning changes on one episode."""

    id: UUID
    fsrs: FSRSState
    access_count: int
    last_accessed: datetime


@dataclass(frozen=True, slots=True)
class EpisodePage:
    items: list[Episode]
    next_cursor: str | None


class RecordStore(Protocol):
    """Source of truth for records, sessions and the keyword index."""

    async def open(self) -> None: ...
    async def close(self) -> None: ...
    async def check(self) -> None:
        """Raise ``StoreUnavailableError`` when the store cannot serve requests."""

    async def get_meta(self, key: str) -> str | None: ...
    async def set_meta(self, key: str, value: str) -> None: ...

    async def ensure_session(self, session_id: str, now: datetime) -> None: ...
    async def list_sessions(self) -> list[str]: ...
    async def session_stats(self, session_id: str) -> SessionStats | None: ...
    async def delete_session(self, session_id: str) -> int:
        """Delete the session and everything in it; return the number of episodes removed."""

    async def insert_episodes(self, session_id: str, episodes: Sequence[Episode]) -> None: ...
    async def get_episode(self, session_id: str, episode_id: UUID) -> Episode | None: ...
    async def get_episodes(self, session_id: str, ids: Sequence[UUID]) -> dict[UUID, Episode]: ...
    async def list_episodes(
        self, session_id: str, flt: EpisodeFilter, limit: int, cursor: str | None
    ) -> EpisodePage:
        """Newest first (timestamp, then id); ``cursor`` is opaque and comes from a page."""

    async def update_episode(self, session_id: str, episode: Episode) -> bool: ...
    async def delete_episode(self, session_id: str, episode_id: UUID) -> bool: ...
    async def mark_indexed(self, session_id: str, ids: Sequence[UUID]) -> None: ...
    async def pending_episodes(
        self, session_id: str, limit: int, ingested_before: datetime | None = None
    ) -> list[Episode]: ...
    async def existing_ids(self, session_id: str, ids: Sequence[UUID]) -> set[UUID]: ...
    async def indexed_ids(self, session_id: str) -> set[UUID]:
        """Ids of the session's records marked indexed (the reconciler checks their vectors)."""

    async def mark_pending(self, session_id: str, ids: Sequence[UUID]) -> None: ...
    async def keyword_search(
        self, session_id: str, query: str, flt: EpisodeFilter, limit: int
    ) -> list[ScoredId]:
        """Best keyword matches first; scores are positive, larger is better."""

    async def record_access(self, session_id: str, updates: Sequence[AccessUpdate]) -> None: ...
    async def candidate_rows(
        self, session_id: str, ids: Sequence[UUID], flt: EpisodeFilter
    ) -> dict[UUID, CandidateRow]:
        """Scoring fields of the ids that exist in the session and pass the filter."""

    async def neighbours(
        self, session_id: str, rows: Sequence[CandidateRow]
    ) -> dict[UUID, tuple[UUID, ...]]:
        """The episodes just before and after each one in the session's timeline
        (ordered by timestamp, then id), archived ones included."""


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
        """Cosine similarity, best first; ``within`` restricts the search to those ids."""

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
