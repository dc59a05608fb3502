"""The port of semantic memory: entities (bi-temporal versions), their relations and access
times. Every method takes the session; an id of another session is simply not found."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol
from uuid import UUID

from ww.models import FSRSState
from ww.models.semantic import Entity, EntityFilter, Relation
from ww.storage.ports.memories import MemoryStore

__all__ = [
    "ACCESS_LOG_CAP",
    "EntityAccess",
    "EntityPage",
    "EntityStore",
    "RelationExistsError",
    "RelationPage",
    "VersionClosedError",
]

# ACT-R's base level is dominated by the most recent accesses; older ones add almost
# nothing, so only the newest few are kept per memory.
ACCESS_LOG_CAP = 50


class VersionClosedError(RuntimeError):
    """The version to supersede is already closed (maps to HTTP 409)."""


class RelationExistsError(RuntimeError):
    """A relation of that type between those entities already exists (HTTP 409)."""


@dataclass(frozen=True, slots=True)
class EntityPage:
    items: list[Entity]
    next_cursor: str | None


@dataclass(frozen=True, slots=True)
class RelationPage:
    items: list[Relation]
    next_cursor: str | None


@dataclass(frozen=True, slots=True)
class EntityAccess:
    """What a recall with learning changes on one entity."""

    id: UUID
    fsrs: FSRSState
    access_count: int
    last_accessed: datetime


class EntityStore(MemoryStore[EntityFilter], Protocol):
    async def insert_entity(self, session_id: str, entity: Entity) -> None:
        """Insert a new entity; its creation counts as its first access. Raises
        ``IdConflictError`` when the id is taken (by this session or another)."""

    async def get_entity(self, session_id: str, entity_id: UUID) -> Entity | None: ...
    async def get_entities(self, session_id: str, ids: Sequence[UUID]) -> dict[UUID, Entity]: ...
    async def list_entities(
        self, session_id: str, flt: EntityFilter, limit: int, cursor: str | None
    ) -> EntityPage:
        """Newest ``valid_from`` first (then id); ``cursor`` is opaque and comes from a page."""

    async def update_entity(self, session_id: str, entity: Entity) -> bool:
        """Replace a version's fields in place (a correction); False when it is not there."""

    async def supersede_entity(self, session_id: str, old_id: UUID, new: Entity) -> Entity:
        """Close ``old_id`` at ``new.valid_from`` and insert ``new`` in one transaction; the
        old version's relations are copied to the new one. Raises ``VersionClosedError`` when
        the old version is already closed, ``KeyError`` when it does not exist. Returns the
        closed old version."""

    async def history(self, session_id: str, lineage_id: UUID) -> list[Entity]:
        """Every version of a lineage, oldest first."""

    async def delete_entity(self, session_id: str, entity_id: UUID) -> bool:
        """Delete one version with its relations and access times."""

    async def pending_entities(self, session_id: str, limit: int) -> list[Entity]: ...

    async def matching_ids(self, session_id: str, flt: EntityFilter, cap: int) -> set[UUID] | None:
        """Ids passing the filter, or None when more than ``cap`` do."""

    async def record_access(
        self, session_id: str, updates: Sequence[EntityAccess], at: datetime
    ) -> None:
        """Store the new FSRS state and append ``at`` to each entity's access times."""

    # -- relations --------------------------------------------------------------------------
    async def insert_relation(self, session_id: str, relation: Relation) -> None:
        """Raises ``RelationExistsError`` for a duplicate (source, target, type)."""

    async def get_relation(self, session_id: str, relation_id: UUID) -> Relation | None: ...
    async def relations_of(self, session_id: str, entity_id: UUID) -> list[Relation]:
        """Relations with the entity at either end, strongest first."""

    async def list_relations(self, session_id: str, limit: int, cursor: str | None) -> RelationPage:
        """Every relation of the session, current and closed, by id; ``cursor`` is opaque
        and comes from a page. Used by export."""

    async def delete_relation(self, session_id: str, relation_id: UUID) -> bool: ...
    async def adjacency(
        self, session_id: str, ids: Sequence[UUID]
    ) -> dict[UUID, list[tuple[UUID, float]]]:
        """Each id's neighbours along relations in either direction, with the weight; only
        current relations between current versions."""
