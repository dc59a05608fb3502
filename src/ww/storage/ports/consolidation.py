"""The port consolidation writes through: links between memories, the record of which
entities consolidation made (with their membership and confidence), and relation weights
for Hebbian decay. Every method takes the session; nothing reads across sessions."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol
from uuid import UUID

from ww.models.api import LinkType

__all__ = [
    "ConsolidatedEntity",
    "ConsolidationStore",
    "EdgeDecay",
    "LinkType",
    "MemoryLink",
    "WeightedEdge",
]


@dataclass(frozen=True, slots=True)
class MemoryLink:
    source_id: UUID
    target_id: UUID
    link_type: LinkType
    created_at: datetime


@dataclass(frozen=True, slots=True)
class ConsolidatedEntity:
    entity_id: UUID
    members_hash: str
    members: frozenset[UUID]
    confidence: float


@dataclass(frozen=True, slots=True)
class WeightedEdge:
    """A current relation's weight and when it last changed (strengthened or decayed)."""

    id: UUID
    weight: float
    since: datetime


@dataclass(frozen=True, slots=True)
class EdgeDecay:
    id: UUID
    weight: float
    """The decayed weight; below the prune threshold the relation is closed instead."""
    pruned: bool


class ConsolidationStore(Protocol):
    async def links(self, session_id: str, memory_id: UUID) -> list[MemoryLink]:
        """Links with the memory at either end, oldest first."""

    async def add_links(self, session_id: str, links: Sequence[MemoryLink]) -> int:
        """Insert links that do not exist yet; return how many were new."""

    async def latest_links(self, session_id: str) -> list[MemoryLink]:
        """The links with the session's newest ``created_at``: what its last consolidation
        that merged anything wrote (a run stamps every link it makes with its own time),
        by type, then target, then source. Empty when the session has none."""

    async def consolidated(self, session_id: str) -> list[ConsolidatedEntity]:
        """Entities consolidation made in the session that still exist."""

    async def save_consolidated(
        self, session_id: str, entity: ConsolidatedEntity, at: datetime
    ) -> None:
        """Record the entity's membership and make its CONSOLIDATED_INTO links exactly
        ``entity.members`` (one transaction)."""

    async def edges(self, session_id: str, after: UUID | None, limit: int) -> list[WeightedEdge]:
        """Current relations in id order after ``after``: decay pages through them."""

    async def decay_edges(
        self, session_id: str, changes: Sequence[EdgeDecay], at: datetime
    ) -> None:
        """Store decayed weights (decayed at ``at``); close pruned relations at ``at``."""

    async def delete_session(self, session_id: str) -> None: ...
