"""Options and report of consolidation ("sleep")."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "ConsolidatedEntityReport",
    "ConsolidationOptions",
    "ConsolidationReport",
    "DuplicateMerge",
    "LinkType",
]


# How consolidation links two memories.
class LinkType(StrEnum):
    # episode -> the entity it was consolidated into (the entity's SOURCE_OF episodes)
    CONSOLIDATED_INTO = "CONSOLIDATED_INTO"
    # newer near-duplicate episode -> the older episode it duplicates
    DUPLICATE_OF = "DUPLICATE_OF"


class ConsolidationOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    dry_run: bool = Field(False, description="Report what would change; change nothing.")
    min_cluster_size: int = Field(5, ge=2, le=1000, description="HDBSCAN min_cluster_size.")
    min_samples: int | None = Field(
        None, ge=1, le=1000, description="HDBSCAN min_samples; default: min_cluster_size."
    )
    max_episodes: int = Field(
        5000, ge=2, le=50_000, description="Most recent live episodes considered."
    )
    duplicate_threshold: float = Field(
        0.97,
        ge=0.5,
        le=1.0,
        description="Cosine at or above which same-speaker episodes are near-duplicates.",
    )
    decay_tau_days: float = Field(
        30.0, gt=0.0, le=36500.0, description="Hebbian decay: w <- w·exp(-Δt/τ)."
    )
    prune_below: float = Field(
        0.05, ge=0.0, le=1.0, description="Relations decayed below this weight are closed."
    )
    archive_retrievability_below: float = Field(
        0.5,
        ge=0.0,
        le=1.0,
        description="FSRS-6 forgets by a power law: a memory never recalled after it was "
        "stored (stability 1 day) falls below 0.5 after about 90 days.",
    )
    archive_importance_below: float = Field(0.3, ge=0.0, le=1.0)
    cluster: bool = True
    merge_duplicates: bool = True
    decay: bool = True
    archive: bool = True


class ConsolidatedEntityReport(BaseModel):
    entity_id: UUID
    name: str
    members: list[UUID]
    confidence: float = Field(description="Capsule agreement (or mean cosine when off).")
    action: str = Field(description="created, updated or unchanged")


class DuplicateMerge(BaseModel):
    duplicate_id: UUID = Field(description="The newer episode, archived.")
    original_id: UUID


class ConsolidationReport(BaseModel):
    session_id: str
    dry_run: bool
    at: datetime
    capsule_encoding: bool
    episodes_considered: int
    clusters: int
    entities_created: int
    entities_updated: int
    entities_unchanged: int
    entities: list[ConsolidatedEntityReport]
    duplicates_merged: list[DuplicateMerge]
    edges_decayed: int
    edges_pruned: int
    episode_edges_decayed: int = Field(
        0, description="Hebbian edges between episodes (CO_RETRIEVED), when a hook is set."
    )
    episode_edges_pruned: int = 0
    archived: list[UUID]
    changed: bool = Field(description="Whether anything was (or, dry run, would be) written.")
