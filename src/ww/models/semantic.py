"""Semantic memory types: entities (bi-temporal versions), relations, entity recall."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated
from uuid import UUID

from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from pydantic.json_schema import SkipJsonSchema

from ww.models import (
    MAX_CONTENT_CHARS,
    MAX_FIELD_CHARS,
    FSRSState,
    IndexState,
    MemoryType,
    as_utc,
    not_blank,
)
from ww.models.kinds import KindHit, KindRecallRequest, KindRecallResult
from ww.models.patch import Patch

__all__ = [
    "ActivatedEntity",
    "Entity",
    "EntityCreate",
    "EntityFilter",
    "EntityHit",
    "EntityRecallRequest",
    "EntityRecallResult",
    "EntityScoreParts",
    "EntitySupersede",
    "EntityType",
    "EntityUpdate",
    "Relation",
    "RelationCreate",
    "RelationType",
    "SpreadRequest",
    "SpreadResult",
]

UtcDatetime = Annotated[datetime, AfterValidator(as_utc)]
Name = Annotated[str, Field(min_length=1, max_length=MAX_FIELD_CHARS), AfterValidator(not_blank)]
ShortText = Annotated[str, Field(max_length=MAX_FIELD_CHARS)]
LongText = Annotated[str, Field(max_length=MAX_CONTENT_CHARS)]


class EntityType(StrEnum):
    CONCEPT = "CONCEPT"
    PERSON = "PERSON"
    PROJECT = "PROJECT"
    TOOL = "TOOL"
    TECHNIQUE = "TECHNIQUE"
    FACT = "FACT"
    EVENT = "EVENT"
    ORGANIZATION = "ORGANIZATION"
    LOCATION = "LOCATION"
    OTHER = "OTHER"


class RelationType(StrEnum):
    USES = "USES"
    PART_OF = "PART_OF"
    CAUSES = "CAUSES"
    SIMILAR_TO = "SIMILAR_TO"
    SOURCE_OF = "SOURCE_OF"
    CONSOLIDATED_INTO = "CONSOLIDATED_INTO"
    CO_RETRIEVED = "CO_RETRIEVED"
    DEPENDS_ON = "DEPENDS_ON"
    RELATED_TO = "RELATED_TO"


class Entity(BaseModel):
    """One version of something the agent knows.

    Versions of the same thing share ``lineage_id`` (the id of the first version). A version
    is current while ``valid_to`` is null; superseding closes it at the successor's
    ``valid_from``. Closed versions are kept, readable and recallable "as of" a past time.
    """

    id: UUID
    session_id: str
    lineage_id: UUID
    version: int = Field(ge=1)
    name: str
    entity_type: EntityType
    summary: str
    details: str = ""
    source: str | None = None
    valid_from: UtcDatetime
    valid_to: UtcDatetime | None = None
    created_at: UtcDatetime
    fsrs: FSRSState
    access_count: int = Field(0, ge=0)
    last_accessed: UtcDatetime | None = None
    index_state: IndexState = IndexState.PENDING

    @property
    def embed_text(self) -> str:
        return f"{self.name}: {self.summary}"

    @property
    def keyword_text(self) -> str:
        return f"{self.name} {self.summary} {self.details}"


class EntityCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Name
    entity_type: EntityType = EntityType.CONCEPT
    summary: LongText = ""
    details: LongText = ""
    source: ShortText | None = None
    valid_from: UtcDatetime | None = Field(None, description="Defaults to now.")


class _Patch(Patch):
    not_nullable = ("name", "entity_type", "summary", "details")

    name: Name | SkipJsonSchema[None] = None
    entity_type: EntityType | SkipJsonSchema[None] = None
    summary: LongText | SkipJsonSchema[None] = None
    details: LongText | SkipJsonSchema[None] = None
    source: ShortText | None = None


class EntityUpdate(_Patch):
    """A correction of this version in place (no new version); only the fields given change.

    To record that the world changed, supersede instead.
    """


class EntitySupersede(_Patch):
    """The new version: fields left out are copied from the version it replaces."""

    valid_from: UtcDatetime | None = Field(
        None, description="When the new version starts to hold; defaults to now."
    )


class EntityFilter(BaseModel):
    """Which versions a list or recall sees; applied inside the stores."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    entity_type: EntityType | None = None
    as_of: UtcDatetime | None = Field(
        None, description="Versions valid at this time; default: the current versions."
    )
    include_closed: bool = Field(False, description="All versions, current and closed.")


class Relation(BaseModel):
    id: UUID
    session_id: str
    source_id: UUID
    target_id: UUID
    relation_type: RelationType
    weight: float = Field(ge=0.0, le=1.0)
    created_at: UtcDatetime
    last_strengthened: UtcDatetime
    valid_from: UtcDatetime
    valid_to: UtcDatetime | None = None


class RelationCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    target_id: UUID
    relation_type: RelationType = RelationType.RELATED_TO
    weight: float = Field(0.5, ge=0.0, le=1.0)


class EntityScoreParts(BaseModel):
    """Components of an entity recall score, each in [0, 1].

    ``base_level`` is ACT-R's base-level activation B = ln Σ t_j^(-0.5) over recorded
    accesses, mapped to a retrieval probability; ``spread`` is the activation reaching the
    entity from the best-scoring other candidates along relations.
    """

    semantic: float = 0.0
    keyword: float = 0.0
    base_level: float = 0.0
    retrievability: float = 0.0
    spread: float = 0.0


class EntityHit(KindHit):
    memory_type: MemoryType = MemoryType.ENTITY
    score_parts: EntityScoreParts
    entity: Entity


class EntityRecallRequest(KindRecallRequest):
    entity_type: EntityType | None = None
    as_of: UtcDatetime | None = Field(
        None, description="Recall the versions valid at this time instead of the current ones."
    )


class EntityRecallResult(KindRecallResult[EntityHit]):
    pass


class SpreadRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    seed_id: UUID
    depth: int = Field(2, ge=1, le=5, description="Most hops from the seed.")
    threshold: float = Field(
        0.1, ge=0.0, le=1.0, description="Activation below this does not spread or show."
    )
    decay: float = Field(0.8, gt=0.0, le=1.0, description="Factor applied at every hop.")
    limit: int = Field(50, ge=1, le=500)


class ActivatedEntity(BaseModel):
    entity_id: UUID
    activation: float = Field(description="1 at the seed; * weight * decay per hop.")
    depth: int
    path: list[UUID] = Field(description="Entity ids from the seed to this one (best path).")
    entity: Entity


class SpreadResult(BaseModel):
    seed_id: UUID
    activated: list[ActivatedEntity]
