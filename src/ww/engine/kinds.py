"""What the shared learning path needs from each kind of memory.

Recall with ``learn``, the recall log and feedback (``RecallLearning``) are one path for
episodes, entities and skills. The learning store is keyed by memory id alone; a kind adds
only how to read its memories, where its FSRS state lives and how to write a changed one
back. A new kind of memory registers one :class:`LearnedKind` and gets feedback for free.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar
from uuid import UUID

from ww.models import FSRSState, MemoryType

__all__ = ["LearnedKind", "Memory"]

Memory = TypeVar("Memory")


@dataclass(frozen=True, slots=True)
class LearnedKind(Generic[Memory]):
    """One kind's side of feedback.

    ``vector_learning`` marks the kind whose vectors the FF encoder scores and
    reconsolidation moves: the encoder's goodness is an episode ranking feature, so only
    episodes train it and have their vectors moved.
    """

    kind: MemoryType
    load: Callable[[str, Sequence[UUID]], Awaitable[Mapping[UUID, Memory]]]
    save: Callable[[str, Sequence[Memory]], Awaitable[None]]
    # The memory's FSRS state; None for a kind without one (skills: a skill's strength is
    # its execution record, not a forgetting curve).
    fsrs_of: Callable[[Memory], FSRSState | None]
    # A copy of the memory carrying the reviewed FSRS state and the learned value.
    learned: Callable[[Memory, FSRSState | None, float], Memory]
    vector_learning: bool = False
    payload: Callable[[Memory], dict[str, Any]] | None = None
