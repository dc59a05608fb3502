"""The learning port: what recall and feedback remember between requests.

Everything learning changes lives here (or on the episode row), never in process memory, so
a restart or a second worker sees the same state. Every method takes the session it acts in;
nothing reads across sessions.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol
from uuid import UUID

from ww.storage.ports import Vector

__all__ = [
    "DEFAULT_VALUE",
    "CandidateLearning",
    "EncoderBlob",
    "FeedbackEntry",
    "HebbianEdge",
    "LearningStore",
    "MemoryState",
    "PastRating",
    "RecallLogEntry",
]

# A memory nobody has rewarded is as likely to help as not.
DEFAULT_VALUE = 0.5


@dataclass(frozen=True, slots=True)
class RecallLogEntry:
    """One recall made with ``learn``: what feedback on its ``recall_id`` refers to."""

    recall_id: UUID
    session_id: str
    created_at: datetime
    query_vector: Vector
    memory_ids: tuple[UUID, ...]  # in rank order: rank = index + 1


@dataclass(frozen=True, slots=True)
class MemoryState:
    """Learned state of one memory beside its record."""

    value: float = DEFAULT_VALUE
    rewards: int = 0
    access_times: tuple[datetime, ...] = ()  # oldest first, the most recent few only

    @classmethod
    def stored(
        cls, value: float | None, rewards: int | None, access_times: Iterable[datetime]
    ) -> MemoryState:
        """The state as a store reads it back: a memory it holds no value for (never
        rewarded) has the default value and no rewards."""
        return cls(
            DEFAULT_VALUE if value is None else float(value),
            0 if rewards is None else int(rewards),
            tuple(access_times),
        )


@dataclass(frozen=True, slots=True)
class HebbianEdge:
    """A CO_RETRIEVED edge; undirected, stored with ``a < b`` (as strings)."""

    a: UUID
    b: UUID
    weight: float
    last_strengthened: datetime

    @staticmethod
    def key(x: UUID, y: UUID) -> tuple[UUID, UUID]:
        return (x, y) if str(x) < str(y) else (y, x)


@dataclass(frozen=True, slots=True)
class FeedbackEntry:
    """The feedback applied to one memory of one recall, and what it changed (JSON)."""

    recall_id: UUID
    memory_id: UUID
    reward: float
    result: str


@dataclass(frozen=True, slots=True)
class PastRating:
    """Feedback a memory got on one recall, with that recall's query vector: what ranking
    needs to tell which past questions were like the one asked now."""

    entry: FeedbackEntry
    query_vector: Vector


@dataclass(frozen=True, slots=True)
class EncoderBlob:
    version: int
    weights: bytes


@dataclass(frozen=True, slots=True)
class CandidateLearning:
    """What ranking reads of a recall's candidates: ``memory_states``, ``edges`` among them,
    the session's ``encoder_version`` and the ``ratings`` each candidate got on recalls still
    in the log (in no set order)."""

    states: dict[UUID, MemoryState]
    edges: list[HebbianEdge]
    encoder_version: int
    ratings: dict[UUID, list[PastRating]]


class LearningStore(Protocol):
    # -- recall log --------------------------------------------------------------------------
    async def log_recall(self, entry: RecallLogEntry, forget_before: datetime | None) -> None:
        """Store the entry; entries of the session older than ``forget_before`` go."""

    async def get_recall(self, session_id: str, recall_id: UUID) -> RecallLogEntry | None: ...

    # -- per-memory state ----------------------------------------------------------------
    async def record_accesses(
        self, session_id: str, ids: Sequence[UUID], now: datetime, keep: int
    ) -> None:
        """Append an access at ``now`` to each memory, keeping its ``keep`` most recent."""

    async def memory_states(self, session_id: str, ids: Sequence[UUID]) -> dict[UUID, MemoryState]:
        """State of the ids that have any; absent ids have the default ``MemoryState``."""

    async def set_values(self, session_id: str, values: Mapping[UUID, tuple[float, int]]) -> None:
        """``id -> (value, rewards seen)``."""

    async def forget(self, session_id: str, ids: Sequence[UUID]) -> None:
        """Drop all learned state of deleted memories (edges included)."""

    # -- Hebbian edges -------------------------------------------------------------------
    async def edges(self, session_id: str, ids: Sequence[UUID]) -> list[HebbianEdge]:
        """Edges with both ends among ``ids``."""

    async def candidate_learning(
        self, session_id: str, ids: Sequence[UUID], *, edges: bool, ratings: bool
    ) -> CandidateLearning:
        """``memory_states`` and (with ``edges``; else none) ``edges`` of ``ids``, the
        ``encoder_version`` and (with ``ratings``; else none) the feedback entries of
        ``ids`` whose recall is still logged, each with its recall's query vector, in one
        read: each read is a round trip and a thread hand-off on a recall's critical path,
        and these always go together."""

    async def edges_of(self, session_id: str, memory_id: UUID, limit: int) -> list[HebbianEdge]:
        """The ``limit`` strongest edges with ``memory_id`` at either end, strongest first
        (ties by the ends' ids)."""

    async def upsert_edges(self, session_id: str, edges: Sequence[HebbianEdge]) -> None: ...
    async def session_edges(self, session_id: str) -> list[HebbianEdge]:
        """Every edge of the session (consolidation's pruning sweep reads them all)."""

    async def delete_edges(self, session_id: str, pairs: Sequence[tuple[UUID, UUID]]) -> None:
        """Remove these edges (either order of the ends); absent ones are ignored."""

    # -- feedback --------------------------------------------------------------------------
    async def feedback_entries(self, session_id: str, recall_id: UUID) -> dict[UUID, FeedbackEntry]:
        """Feedback already applied to the recall, by memory id."""

    async def save_feedback(self, session_id: str, entries: Sequence[FeedbackEntry]) -> int:
        """Insert entries not already there; return how many were new."""

    # -- FF encoder ----------------------------------------------------------------------
    async def encoder_version(self, session_id: str) -> int:
        """0 when the session has no trained encoder."""

    async def load_encoder(self, session_id: str) -> EncoderBlob | None: ...
    async def save_encoder(self, session_id: str, blob: EncoderBlob, expected_version: int) -> bool:
        """Store if the stored version is still ``expected_version`` (0 = none); True when
        stored. Two workers training at once cannot overwrite each other's step."""

    async def delete_session(self, session_id: str) -> None: ...
