"""Request and response bodies of the REST API (domain types are reused where they fit)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from ww.api.disk import DiskReport
from ww.engine import Preset
from ww.models import Episode, EpisodeCreate, EpisodeFilter, SessionStats

__all__ = [
    "BatchCreate",
    "BatchCreated",
    "EpisodeCreateBody",
    "EpisodeList",
    "HealthReport",
    "ImportanceBody",
    "OnConflict",
    "RecallRequest",
    "SessionDeleted",
    "SessionList",
]

MAX_BATCH = 1000


OnConflict = Literal["error", "return_existing"]

_ON_CONFLICT = (
    "What to do when the session already has an episode with this `external_id`: absent, "
    "store a duplicate (`external_id` is not unique); `error`, answer 409 "
    "`external_id_conflict` naming the existing episode and store nothing; "
    "`return_existing`, answer the existing episode and store nothing."
)


class EpisodeCreateBody(EpisodeCreate):
    on_conflict: OnConflict | None = Field(None, description=_ON_CONFLICT)


class BatchCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    episodes: list[EpisodeCreate] = Field(min_length=1, max_length=MAX_BATCH)
    on_conflict: OnConflict | None = Field(
        None,
        description=_ON_CONFLICT.replace("store nothing", "store none of the batch", 1)
        + " Two items of the batch with one `external_id` count as a conflict too.",
    )


class BatchCreated(BaseModel):
    count: int
    episodes: list[Episode]
    existing: int = Field(
        0, description="How many of `episodes` were already stored (`return_existing`)."
    )


class EpisodeList(BaseModel):
    items: list[Episode]
    next_cursor: str | None = Field(
        None, description="Pass as `cursor` to get the next (older) page; null on the last."
    )


class ImportanceBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    importance: float = Field(1.0, ge=0.0, le=1.0)


class RecallRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    query: str = Field(min_length=1, max_length=4000)
    limit: int = Field(10, ge=1, le=100)
    preset: Preset = Preset.BALANCED
    learn: bool = Field(
        True, description="Record the retrieval as a review; false makes recall read-only."
    )
    filters: EpisodeFilter = Field(default_factory=EpisodeFilter)


class SessionList(BaseModel):
    sessions: list[SessionStats]
    next_cursor: str | None = Field(
        None, description="Pass as `cursor` to get the next page; null on the last."
    )


class SessionDeleted(BaseModel):
    session_id: str
    deleted_episodes: int
    deleted_entities: int = Field(description="Entity versions, current and closed.")
    deleted_skills: int


class HealthReport(BaseModel):
    status: str
    version: str
    components: dict[str, str]
    # Which worker process answered (WW_API_WORKERS > 1 runs several behind one port).
    worker_pid: int
    # Free space of the data directory against WW_MIN_FREE_DISK_MB (ww.api.disk).
    disk: DiskReport | None = None
    circuits: dict[str, str] = Field(
        default_factory=dict,
        description="State of each circuit breaker of the answering worker: `closed`, `open` "
        "or `half-open`. An open one makes its component unavailable.",
    )
