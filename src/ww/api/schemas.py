"""Request and response bodies of the REST API (domain types are reused where they fit)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from ww.api.disk import DiskReport
from ww.engine import Preset
from ww.models import Episode, EpisodeCreate, EpisodeFilter, SessionStats

__all__ = [
    "BatchCreate",
    "BatchCreated",
    "EpisodeList",
    "HealthReport",
    "ImportanceBody",
    "RecallRequest",
    "SessionDeleted",
    "SessionList",
]

MAX_BATCH = 1000


class BatchCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    episodes: list[EpisodeCreate] = Field(min_length=1, max_length=MAX_BATCH)


class BatchCreated(BaseModel):
    count: int
    episodes: list[Episode]


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
