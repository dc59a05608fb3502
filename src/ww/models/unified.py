"""Types of the unified recall: one query over episodes, entities and skills."""

from __future__ import annotations

from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, model_validator

from ww.models import Episode, EpisodeFilter, MemoryType
from ww.models.api import AskedRecall, Preset
from ww.models.procedural import Skill
from ww.models.semantic import Entity, EntityType, UtcDatetime

__all__ = [
    "DEFAULT_LIMITS",
    "UnifiedHit",
    "UnifiedRecallRequest",
    "UnifiedRecallResult",
]

DEFAULT_LIMITS: dict[MemoryType, int] = {
    MemoryType.EPISODE: 10,
    MemoryType.ENTITY: 5,
    MemoryType.SKILL: 3,
}


class UnifiedRecallRequest(AskedRecall):
    """``filters`` are episode filters and apply to episodes only; ``entity_type`` and
    ``as_of`` apply to entities only; ``domain`` and ``include_deprecated`` to skills only.
    """

    model_config = ConfigDict(extra="forbid")

    query: str = Field(min_length=1, max_length=4000)
    memory_types: list[MemoryType] | None = Field(
        None,
        min_length=1,
        max_length=3,
        description="Types to recall; default: every type with a positive limit.",
    )
    limits: dict[MemoryType, int] = Field(
        default_factory=dict,
        description="Most hits per type (0-100); types left out use episode 10, entity 5, skill 3.",
    )
    preset: Preset = Field(Preset.BALANCED, description="Episode scoring preset.")
    learn: bool = Field(
        True, description="Record the retrieval on every hit; false makes recall read-only."
    )
    filters: EpisodeFilter = Field(default_factory=EpisodeFilter)
    # Each kind's own filters, under the names its recall request gives them: the unified
    # recall passes them on by name.
    entity_type: EntityType | None = None
    as_of: UtcDatetime | None = None
    domain: str | None = Field(None, max_length=512)
    include_deprecated: bool = False

    @model_validator(mode="after")
    def _check_limits(self) -> UnifiedRecallRequest:
        for kind, n in self.limits.items():
            if not 0 <= n <= 100:
                raise ValueError(f"limits.{kind.value} must be between 0 and 100")
        return self

    def limit_of(self, kind: MemoryType) -> int:
        if self.memory_types is not None and kind not in self.memory_types:
            return 0
        return self.limits.get(kind, DEFAULT_LIMITS[kind])


class UnifiedHit(BaseModel):
    memory_type: MemoryType
    id: UUID
    score: float = Field(
        description="Comparable across types: the type's fused score divided by the most "
        "that type's weights can give, so in [0, 1]."
    )
    type_score: float = Field(description="The score the type's own recall gave.")
    score_parts: dict[str, float]
    relevance: float = Field(
        ge=0.0,
        le=1.0,
        description=(
            "Calibrated chance the memory answers the query, from its cosine and keyword "
            "coverage (the episode recall's model, applied to entities and skills as well)."
        ),
    )
    external_id: str | None = Field(None, description="The episode's external id.")
    memory: Episode | Entity | Skill


class UnifiedRecallResult(BaseModel):
    recall_id: UUID
    query: str
    hits: list[UnifiedHit]
    counts: dict[MemoryType, int]
    degraded: bool = False
