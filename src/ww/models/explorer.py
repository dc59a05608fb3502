"""Responses of the reads behind the explorer's Graph and Dynamics views.

They are ordinary API reads (any client may call them); the explorer draws them.
"""

from __future__ import annotations

from enum import StrEnum
from uuid import UUID

from pydantic import BaseModel, Field

from ww.models.consolidation import DuplicateMerge
from ww.models.episodes import FSRSState, UtcDatetime
from ww.models.semantic import Entity, Relation

__all__ = [
    "CurvePoint",
    "EntityGraph",
    "Histogram",
    "LastConsolidation",
    "MemoryKind",
    "MergedEntity",
    "RetrievabilityCurve",
    "SessionDistribution",
]


class EntityGraph(BaseModel):
    nodes: list[Entity] = Field(description="Current entity versions, newest valid_from first.")
    edges: list[Relation] = Field(description="Current relations between two of the nodes.")
    truncated: bool = Field(
        description="The session has more current entities than the limit (or more relations "
        "than the graph reads); the graph shows part of it."
    )


class MemoryKind(StrEnum):
    EPISODE = "episode"
    ENTITY = "entity"


class CurvePoint(BaseModel):
    at: UtcDatetime
    retrievability: float = Field(ge=0.0, le=1.0)


class RetrievabilityCurve(BaseModel):
    memory_id: UUID
    kind: MemoryKind
    fsrs: FSRSState
    now: UtcDatetime
    retrievability: float = Field(ge=0.0, le=1.0, description="Retrievability now.")
    points: list[CurvePoint] = Field(
        description="The FSRS-6 forgetting curve of the stored state, from its last review "
        "to ``days`` after now, evenly spaced."
    )
    accesses: list[UtcDatetime] = Field(
        description="Recorded retrievals (the most recent few), oldest first."
    )
    formula: str


class Histogram(BaseModel):
    edges: list[float] = Field(description="Bin edges, one more than the counts.")
    counts: list[int]


class SessionDistribution(BaseModel):
    episodes: int = Field(description="Live episodes counted.")
    truncated: bool = Field(description="The session has more live episodes than were read.")
    value: Histogram = Field(description="Learned values, equal bins over [0, 1].")
    stability: Histogram = Field(
        description="FSRS stabilities in days, log-spaced bins from the smallest to the largest."
    )


class MergedEntity(BaseModel):
    entity_id: UUID
    name: str | None = Field(description="The entity's name; null when it has since gone.")
    members: list[UUID] = Field(description="Episodes consolidated into it.")


class LastConsolidation(BaseModel):
    at: UtcDatetime | None = Field(
        description="When the session's last consolidation that merged anything ran; null "
        "when none has."
    )
    entities: list[MergedEntity]
    duplicates: list[DuplicateMerge]
