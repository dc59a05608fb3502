"""Bodies of the REST API that are not domain types: requests, pages, reports, errors.

They live here, beside the domain types and away from ``ww.api``, so that a client (the
SDK) can validate against the server's own models without importing FastAPI, the engine
or the stores: this module imports pydantic and ``ww.models`` only.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Generic, Literal, Self, TypeVar
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, model_validator

from ww.models.consolidation import LinkType
from ww.models.control import Level
from ww.models.episodes import (
    AskedAt,
    Episode,
    EpisodeCreate,
    EpisodeFilter,
    SessionStats,
)
from ww.models.procedural import Skill, SkillExecution, SkillVersion
from ww.models.semantic import Entity, Relation

__all__ = [
    "MAX_BATCH",
    "AskedRecall",
    "BatchCreate",
    "BatchCreated",
    "Caller",
    "ControlHealth",
    "DiskReport",
    "EntityHistory",
    "EntityList",
    "EpisodeCreateBody",
    "EpisodeList",
    "EpisodeState",
    "ErrorBody",
    "ErrorEnvelope",
    "ExecutionList",
    "FeedbackChange",
    "FeedbackRequest",
    "FeedbackResponse",
    "HealthReport",
    "HebbianLink",
    "ImportReport",
    "ImportanceBody",
    "LinkList",
    "LinkType",
    "MemoryLinkOut",
    "OnConflict",
    "Page",
    "Preset",
    "RecallRequest",
    "ReembedMode",
    "RelationList",
    "SessionDeleted",
    "SessionList",
    "SkillList",
    "SkillVersions",
    "WriteErrorReport",
]

T = TypeVar("T")

MAX_BATCH = 1000


class ErrorBody(BaseModel):
    code: str
    message: str
    request_id: str | None = None


class ErrorEnvelope(BaseModel):
    error: ErrorBody


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None = Field(
        None, description="Pass as `cursor` to get the next page; null on the last."
    )


# How episode recall weighs its signals; the weights are ww.engine.recall.PRESETS.
class Preset(StrEnum):
    # Meaning first (0.60), words second (0.25), a little of everything else.
    BALANCED = "balanced"
    # Almost all meaning (0.85): paraphrases and questions in other words.
    SEMANTIC = "semantic"
    # Words first (0.60): names, codes and identifiers.
    KEYWORD = "keyword"
    # Recency weighs 0.30: what happened lately.
    RECENT = "recent"


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


class AskedRecall(BaseModel):
    """What episode and unified recall share: when the question is asked, and how relevant a
    hit must be to be kept."""

    at: AskedAt | None = Field(
        None,
        description=(
            "When the question is asked (default: now). Relative time words in the query "
            '("yesterday", "last month") and recency are judged from this instant; '
            '"yesterday" is the day before in its offset (UTC when it has none).'
        ),
    )
    min_relevance: float | None = Field(
        None,
        ge=0.0,
        le=1.0,
        description="Drop hits whose relevance is below this (default: keep every hit).",
    )


class RecallRequest(AskedRecall):
    model_config = ConfigDict(extra="forbid")
    query: str = Field(min_length=1, max_length=4000)
    limit: int = Field(10, ge=1, le=100)
    preset: Preset = Preset.BALANCED
    learn: bool = Field(
        True, description="Record the retrieval as a review; false makes recall read-only."
    )
    filters: EpisodeFilter = Field(default_factory=EpisodeFilter)


class EntityList(Page[Entity]):
    pass


class RelationList(BaseModel):
    items: list[Relation]


class EntityHistory(BaseModel):
    lineage_id: UUID
    versions: list[Entity] = Field(description="Every version, oldest first.")


class SkillList(Page[Skill]):
    pass


class SkillVersions(BaseModel):
    current: Skill
    previous: list[SkillVersion] = Field(description="Earlier versions, oldest first.")


class ExecutionList(BaseModel):
    items: list[SkillExecution]


Reward = Annotated[float, Field(ge=0.0, le=1.0)]


class FeedbackRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    recall_id: UUID = Field(description="The `recall_id` of a recall made with `learn: true`.")
    reward: Reward | None = Field(
        None, description="Reward in [0, 1] for every memory the recall returned."
    )
    rewards: dict[UUID, Reward] | None = Field(
        None,
        max_length=100,
        description="Reward per memory id (these win over `reward`).",
    )

    @model_validator(mode="after")
    def _some_reward(self) -> Self:
        if self.reward is None and not self.rewards:
            raise ValueError("give `reward` and/or a non-empty `rewards`")
        return self


class FeedbackChange(BaseModel):
    """What the feedback did to one memory. A repeat returns the first answer unchanged."""

    memory_id: UUID
    reward: float
    error: float = Field(description="Reward prediction error `reward - value` (0: no change).")
    labile: bool = Field(description="Inside the lability window, so open to change.")
    value_before: float
    value_after: float
    stability_before: float | None
    stability_after: float | None
    vector_moved: bool = Field(description="Reconsolidation moved the stored vector.")
    encoder_trained: bool
    edges_changed: int


class FeedbackResponse(BaseModel):
    recall_id: UUID
    changes: list[FeedbackChange]


class MemoryLinkOut(BaseModel):
    source_id: UUID
    target_id: UUID
    link_type: LinkType
    created_at: datetime


class LinkList(BaseModel):
    memory_id: UUID
    links: list[MemoryLinkOut]


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


class ReembedMode(StrEnum):
    """``auto``: embed when the file's model or dimension differs from the configured one,
    or a line has no vector. ``always``: ignore the file's vectors. ``never``: use them, and
    refuse a file from another model or a line without a vector."""

    AUTO = "auto"
    ALWAYS = "always"
    NEVER = "never"


class ImportReport(BaseModel):
    format_version: int
    embedding_model: str = Field(description="The model named by the file's header.")
    counts: dict[str, int] = Field(description="Records written (inserted or replaced), by kind.")
    reembedded: int = Field(description="Records whose vector was computed by this server.")
    pending: int = Field(
        description="Records left pending because the vector index was unavailable; the "
        "reconciler indexes them."
    )
    skipped: dict[str, int] = Field(
        default_factory=dict,
        description="Lines not applied, by kind: state tied to the exporting model's vector "
        "space (the FF encoder) when the file comes from another model.",
    )


class WriteErrorReport(BaseModel):
    component: str = Field(description="The store that failed or refused: sqlite, qdrant_edge.")
    code: Literal["watermark", "disk_full"] = Field(
        description="watermark: refused below WW_MIN_FREE_DISK_MB; disk_full: the store "
        "itself found the disk full."
    )
    at: datetime


class DiskReport(BaseModel):
    path: str = Field(description="The data directory whose file system is measured.")
    free_mb: float
    min_free_mb: int = Field(description="WW_MIN_FREE_DISK_MB: writes need this much free.")
    reserve_mb: int = Field(description="Deletes go on down to this much free.")
    writes: Literal["accepted", "refused"]
    learning: Literal["on", "paused"] = Field(
        description="paused: recalls answer but record no accesses, reviews or log."
    )
    local_stores: bool = Field(
        description="Whether stores write into the data directory (false on the server "
        "tier: the watermark then guards nothing)."
    )
    last_write_error: WriteErrorReport | None = None


class ControlHealth(BaseModel):
    """What the control plane blocks now (``/api/v1/control``)."""

    level: Level = Field(description="Emergency level: NONE, LIMITED (read-only), LOCKDOWN.")
    reason: str | None = Field(None, description="The reason given with the level.")
    since: datetime | None = None
    read_only_mode: bool
    maintenance_mode: bool
    writes: Literal["accepted", "refused"]


class Caller(BaseModel):
    """Who the request's credential names: what a client (the explorer) needs to offer only
    what the caller may do. Names the key by its id, never the key."""

    auth: bool = Field(description="Whether the server checks credentials at all.")
    id: str | None = Field(
        description="The key's id (`WW_API_KEY`, an id of `WW_API_KEYS`, `jwt:<sub>`); "
        "null while auth is off."
    )
    role: Literal["user", "admin"] = Field(
        description="`admin` may call the operator routes; while auth is off every caller is."
    )
    sessions: list[str] | None = Field(
        description="The sessions a bound key may use, sorted; null for every session."
    )


class HealthReport(BaseModel):
    status: str
    version: str
    components: dict[str, str]
    # Which worker process answered (WW_API_WORKERS > 1 runs several behind one port).
    worker_pid: int
    # Free space of the data directory against WW_MIN_FREE_DISK_MB (ww.api.disk).
    disk: DiskReport | None = None
    control: ControlHealth | None = None
    circuits: dict[str, str] = Field(
        default_factory=dict,
        description="State of each circuit breaker of the answering worker: `closed`, `open` "
        "or `half-open`. An open one makes its component unavailable.",
    )


class HebbianLink(BaseModel):
    """A co-retrieval (Hebbian) edge seen from one memory: the memory at its other end."""

    memory_id: UUID
    weight: float
    last_strengthened: datetime


class EpisodeState(BaseModel):
    """An episode with what recall learned about it and what it links to, for inspection
    (``GET /api/v1/episodes/{id}/state``; reading it changes nothing)."""

    episode: Episode
    retrievability: float = Field(
        description="FSRS probability of recall now, from stability and the last review."
    )
    value: float = Field(description="Learned value in [0, 1], from feedback.")
    rewards: int = Field(description="Rewards the value has learned from.")
    access_times: list[datetime] = Field(description="Its most recent recalls, oldest first.")
    neighbours: list[Episode] = Field(
        description="The episodes just before and after it in the session's timeline."
    )
    hebbian: list[HebbianLink] = Field(description="Strongest co-retrieval edges first.")
    consolidation: list[MemoryLinkOut] = Field(
        description="Consolidation links (merged into an entity, duplicate of), oldest first."
    )
