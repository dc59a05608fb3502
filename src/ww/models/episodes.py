"""Domain types shared by the engine, the stores and the API."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any
from uuid import UUID

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, PrivateAttr
from pydantic.json_schema import SkipJsonSchema
from pydantic_core import PydanticCustomError

from ww.models.patch import Patch

__all__ = [
    "INT64_MAX",
    "INT64_MIN",
    "MAX_CONTENT_CHARS",
    "MAX_FIELD_CHARS",
    "METADATA_KEY_PATTERN",
    "AskedAt",
    "Episode",
    "EpisodeContext",
    "EpisodeCreate",
    "EpisodeFilter",
    "EpisodeUpdate",
    "FSRSState",
    "IndexState",
    "MemoryType",
    "MetadataFilterValue",
    "MetadataValue",
    "Outcome",
    "RecallHit",
    "RecallResult",
    "ScoreParts",
    "SessionStats",
    "UtcDatetime",
    "as_utc",
    "not_blank",
]

MAX_CONTENT_CHARS = 32_000
MAX_FIELD_CHARS = 512
METADATA_KEY_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]{0,63}$"

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


def _storable_scalar(value: Any) -> Any:
    """Refuse what a store cannot keep as given: integers outside 64 bits (SQLite and Neo4j
    hold 64-bit integers; a larger one could be stored as JSON but never filtered) and
    non-finite floats (JSON has no NaN or infinity, so they would come back as null)."""
    if isinstance(value, int) and not isinstance(value, bool):
        if not INT64_MIN <= value <= INT64_MAX:
            raise PydanticCustomError(
                "int64_range", "integers must be between -2**63 and 2**63-1 (64 bits)"
            )
    elif isinstance(value, float) and not math.isfinite(value):
        raise PydanticCustomError("finite_number", "numbers must be finite (no NaN or infinity)")
    return value


MetadataValue = Annotated[str | int | float | bool | None, BeforeValidator(_storable_scalar)]
# Filters match exactly, so floats (which never compare exactly) are not filterable.
MetadataFilterValue = Annotated[str | int | bool, BeforeValidator(_storable_scalar)]


def not_blank(value: str) -> str:
    """Text that must say something: whitespace alone is as empty as nothing."""
    if not value.strip():
        raise PydanticCustomError("blank_string", "must not be empty or only whitespace")
    return value


def as_utc(value: datetime) -> datetime:
    """Naive datetimes are taken as UTC; aware ones are converted to UTC."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    try:
        return value.astimezone(UTC)
    except OverflowError:
        # e.g. 0001-01-01T00:00+01:00 has no UTC equivalent; pydantic turns this into a 422.
        raise ValueError("datetime is out of range once converted to UTC") from None


UtcDatetime = Annotated[datetime, AfterValidator(as_utc)]


def _asked_at(value: datetime) -> datetime:
    """Naive is UTC; an aware value keeps its offset (it must still have a UTC equivalent)."""
    utc = as_utc(value)  # raises for an instant with no UTC equivalent
    return utc if value.tzinfo is None else value


# When a recall is asked: the offset stays, because "yesterday" is the asker's local day.
AskedAt = Annotated[datetime, AfterValidator(_asked_at)]
ShortText = Annotated[str, Field(max_length=MAX_FIELD_CHARS)]
Content = Annotated[
    str, Field(min_length=1, max_length=MAX_CONTENT_CHARS), AfterValidator(not_blank)
]


class MemoryType(StrEnum):
    EPISODE = "episode"
    ENTITY = "entity"
    SKILL = "skill"


class Outcome(StrEnum):
    SUCCESS = "success"
    FAILURE = "failure"
    PARTIAL = "partial"
    NEUTRAL = "neutral"


class IndexState(StrEnum):
    """Where a record stands between the record store and the vector index."""

    # The SQLite stores count indexed records as all less the pending ones
    # (``indexed_count``): a third state must change that count. (A comment, not the
    # docstring: the docstring is the OpenAPI schema's description.)

    PENDING = "pending"
    INDEXED = "indexed"


class EpisodeContext(BaseModel):
    """Where an episode happened; ``project`` is filterable."""

    model_config = ConfigDict(extra="forbid")

    project: ShortText | None = None
    file: ShortText | None = None
    tool: ShortText | None = None
    cwd: ShortText | None = None
    git_branch: ShortText | None = None
    extra: dict[str, MetadataValue] = Field(default_factory=dict, max_length=64)


class FSRSState(BaseModel):
    """Spaced-repetition memory state (FSRS-6): stability in days, difficulty in [1, 10]."""

    stability: float = Field(ge=0.0)
    difficulty: float = Field(ge=1.0, le=10.0)
    last_review: UtcDatetime
    reps: int = Field(0, ge=0)
    lapses: int = Field(0, ge=0)


class Episode(BaseModel):
    """Something that happened, as the agent experienced it."""

    id: UUID
    session_id: str
    content: str
    timestamp: UtcDatetime
    ingested_at: UtcDatetime
    speaker: str | None = None
    source: str | None = None
    context: EpisodeContext = Field(default_factory=EpisodeContext)
    metadata: dict[str, Any] = Field(default_factory=dict)
    external_id: str | None = None
    outcome: Outcome = Outcome.NEUTRAL
    importance: float = Field(0.5, ge=0.0, le=1.0)
    fsrs: FSRSState
    access_count: int = Field(0, ge=0)
    last_accessed: UtcDatetime | None = None
    value: float = Field(0.5, ge=0.0, le=1.0)
    archived: bool = False
    index_state: IndexState = IndexState.PENDING


class EpisodeFilter(BaseModel):
    """Filters applied inside the stores, before ranking."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    time_from: UtcDatetime | None = None
    time_to: UtcDatetime | None = None
    outcome: Outcome | None = None
    speaker: ShortText | None = None
    project: ShortText | None = None
    metadata: dict[Annotated[str, Field(pattern=METADATA_KEY_PATTERN)], MetadataFilterValue] = (
        Field(default_factory=dict, max_length=16)
    )
    include_archived: bool = False


class ScoreParts(BaseModel):
    """The components of a recall score, each in [0, 1], weighted into ``score``.

    ``semantic`` is the cosine to the query (to its closest named event too, when the query
    compares events: ``ww.engine.comparisons``). ``neighbour`` is the best base score among
    the memory's temporal neighbours that another speaker said and that were also
    candidates; ``speaker`` is 1 when the query names the memory's speaker. The learned
    parts: ``activation`` (ACT-R base level, squashed), ``value`` (learned from feedback),
    ``ff`` (FF encoder goodness, 0.5 until it has learned) and ``spread`` (Hebbian spreading
    activation from co-retrieved candidates). The time parts: ``time`` (1 inside the window
    a relative time expression in the query names, falling off outside it) and ``newest``
    (age rank among the candidates, 1 the newest, when the query asks for the latest). A
    part whose flag is off, or whose cue the query lacks, is 0.
    """

    semantic: float = 0.0
    keyword: float = 0.0
    retrievability: float = 0.0
    recency: float = 0.0
    importance: float = 0.0
    neighbour: float = 0.0
    speaker: float = 0.0
    activation: float = 0.0
    value: float = 0.0
    ff: float = 0.0
    spread: float = 0.0
    time: float = 0.0
    newest: float = 0.0


class RecallHit(BaseModel):
    memory_type: MemoryType = MemoryType.EPISODE
    id: UUID
    external_id: str | None
    score: float
    score_parts: ScoreParts
    relevance: float = Field(
        0.0,
        ge=0.0,
        le=1.0,
        description=(
            "Calibrated chance that the memory answers the query, comparable across "
            "queries and sessions (score ranks within one recall only)."
        ),
    )
    episode: Episode


class RecallResult(BaseModel):
    recall_id: UUID
    query: str
    hits: list[RecallHit]
    degraded: bool = False
    # The score parts the query's time cues switched on ("time", "newest"): unified recall
    # counts only these in the most an episode can score. Not part of the response.
    _cue_parts: frozenset[str] = PrivateAttr(default_factory=frozenset)

    @property
    def cue_parts(self) -> frozenset[str]:
        return self._cue_parts

    def with_cue_parts(self, parts: frozenset[str]) -> RecallResult:
        self._cue_parts = parts
        return self


class SessionStats(BaseModel):
    """What a session holds: ``episodes`` (``archived`` and ``pending`` among them),
    ``entities`` (entity versions, current and closed), ``skills`` and ``content_chars``."""

    session_id: str
    created_at: UtcDatetime
    episodes: int
    archived: int
    pending: int
    entities: int = 0
    skills: int = 0
    content_chars: int = Field(
        0,
        description="Characters of episode content the session holds, archived included: "
        "its size in text (not bytes on disk, which indexes and vectors add to).",
    )
    last_activity: UtcDatetime | None


class EpisodeCreate(BaseModel):
    """A new episode as a caller describes it."""

    model_config = ConfigDict(extra="forbid")

    content: Content
    timestamp: UtcDatetime | None = None
    speaker: ShortText | None = None
    source: ShortText | None = None
    context: EpisodeContext = Field(default_factory=EpisodeContext)
    metadata: dict[Annotated[str, Field(pattern=METADATA_KEY_PATTERN)], MetadataValue] = Field(
        default_factory=dict, max_length=64
    )
    external_id: ShortText | None = None
    outcome: Outcome = Outcome.NEUTRAL
    importance: float = Field(0.5, ge=0.0, le=1.0)


class EpisodeUpdate(Patch):
    """A partial update: only the fields given change.

    ``speaker``, ``source`` and ``external_id`` may be set to null to clear them; the other
    fields may be left out but not nulled.
    """

    not_nullable = (
        "content",
        "timestamp",
        "context",
        "metadata",
        "outcome",
        "importance",
        "archived",
    )

    content: Content | SkipJsonSchema[None] = None
    timestamp: UtcDatetime | SkipJsonSchema[None] = None
    speaker: ShortText | None = None
    source: ShortText | None = None
    context: EpisodeContext | SkipJsonSchema[None] = None
    metadata: (
        dict[Annotated[str, Field(pattern=METADATA_KEY_PATTERN)], MetadataValue]
        | SkipJsonSchema[None]
    ) = Field(None, max_length=64)
    external_id: ShortText | None = None
    outcome: Outcome | SkipJsonSchema[None] = None
    importance: float | SkipJsonSchema[None] = Field(None, ge=0.0, le=1.0)
    archived: bool | SkipJsonSchema[None] = None
