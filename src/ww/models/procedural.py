"""Procedural memory types: skills, their versions and executions, skill recall, how-to."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator
from pydantic.json_schema import SkipJsonSchema

from ww.models import (
    MAX_CONTENT_CHARS,
    MAX_FIELD_CHARS,
    METADATA_KEY_PATTERN,
    FSRSState,
    IndexState,
    MemoryType,
    MetadataValue,
    as_utc,
    not_blank,
)
from ww.models.kinds import KindHit, KindRecallRequest, KindRecallResult
from ww.models.patch import Patch

__all__ = [
    "MAX_STEPS",
    "SKILL_DEFAULT_DIFFICULTY",
    "SKILL_DEFAULT_STABILITY",
    "HowTo",
    "HowToRequest",
    "Skill",
    "SkillCreate",
    "SkillDeprecate",
    "SkillExecution",
    "SkillExecutionCreate",
    "SkillExecutionResult",
    "SkillHit",
    "SkillRecallRequest",
    "SkillRecallResult",
    "SkillScoreParts",
    "SkillStep",
    "SkillUpdate",
    "SkillVersion",
]

MAX_STEPS = 100
UtcDatetime = Annotated[datetime, AfterValidator(as_utc)]
Name = Annotated[str, Field(min_length=1, max_length=MAX_FIELD_CHARS), AfterValidator(not_blank)]
ShortText = Annotated[str, Field(max_length=MAX_FIELD_CHARS)]
# Stored like metadata, so held to the same 64-bit integers and finite numbers.
ParamValue = MetadataValue


class SkillStep(BaseModel):
    model_config = ConfigDict(extra="forbid")

    order: int = Field(ge=1, le=MAX_STEPS, description="1-based position; unique in a skill.")
    action: Name
    tool: ShortText | None = None
    parameters: dict[Annotated[str, Field(pattern=METADATA_KEY_PATTERN)], ParamValue] = Field(
        default_factory=dict, max_length=32
    )
    expected_outcome: ShortText | None = None


def _ordered(steps: list[SkillStep]) -> list[SkillStep]:
    orders = [s.order for s in steps]
    if len(set(orders)) != len(orders):
        raise ValueError("step orders must be unique")
    return sorted(steps, key=lambda s: s.order)


Steps = Annotated[list[SkillStep], Field(max_length=MAX_STEPS), AfterValidator(_ordered)]
Script = Annotated[
    str, Field(min_length=1, max_length=MAX_CONTENT_CHARS), AfterValidator(not_blank)
]


# The FSRS state a skill stored before skills had one is given: a new memory's state under
# the default ``WW_FSRS_*`` settings (``Fsrs().new_state``), reviewed last when it was
# created. A test holds these to ``Fsrs``'s own defaults.
SKILL_DEFAULT_STABILITY = 1.0
SKILL_DEFAULT_DIFFICULTY = 5.0


class Skill(BaseModel):
    """How to do something. ``success_rate`` is the Beta(1, 1) posterior mean
    (successes + 1) / (successes + failures + 2). ``fsrs`` is reviewed by recall with
    ``learn`` and by feedback, as an entity's is."""

    @model_validator(mode="before")
    @classmethod
    def _default_fsrs(cls, data: Any) -> Any:
        # Skills written before they had FSRS state (old exports, version snapshots, Neo4j
        # nodes) come without it.
        if isinstance(data, dict) and data.get("fsrs") is None and "created_at" in data:
            data = {
                **data,
                "fsrs": {
                    "stability": SKILL_DEFAULT_STABILITY,
                    "difficulty": SKILL_DEFAULT_DIFFICULTY,
                    "last_review": data["created_at"],
                },
            }
        return data

    id: UUID
    session_id: str
    name: str
    domain: str
    task: str
    trigger_pattern: str | None = None
    steps: list[SkillStep]
    script: str
    script_generated: bool = Field(description="True when the script was written from the steps.")
    successes: int = Field(0, ge=0)
    failures: int = Field(0, ge=0)
    success_rate: float = Field(0.5, ge=0.0, le=1.0)
    execution_count: int = Field(0, ge=0)
    last_executed: UtcDatetime | None = None
    version: int = Field(1, ge=1)
    deprecated: bool = False
    replaced_by: UUID | None = None
    created_at: UtcDatetime
    updated_at: UtcDatetime
    fsrs: FSRSState
    access_count: int = Field(0, ge=0)
    last_accessed: UtcDatetime | None = None
    index_state: IndexState = IndexState.PENDING

    @property
    def keyword_text(self) -> str:
        """What keyword search reads of the skill."""
        steps = " ".join(f"{st.action} {st.tool or ''}" for st in self.steps)
        return f"{self.name} {self.task} {self.trigger_pattern or ''} {steps}"


class SkillCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Name
    domain: Name = "general"
    task: Annotated[str, Field(min_length=1, max_length=4000), AfterValidator(not_blank)]
    trigger_pattern: ShortText | None = None
    steps: Steps = Field(default_factory=list)
    script: Script | None = Field(None, description="Generated from the steps when missing.")

    @model_validator(mode="after")
    def _steps_or_script(self) -> SkillCreate:
        if not self.steps and self.script is None:
            raise ValueError("a skill needs steps or a script")
        return self


class SkillUpdate(Patch):
    """Only the fields given change; every update bumps ``version`` and keeps the previous
    one. New steps without a script regenerate a generated script."""

    not_nullable = ("name", "domain", "task", "steps")

    name: Name | SkipJsonSchema[None] = None
    domain: Name | SkipJsonSchema[None] = None
    task: (
        Annotated[str, Field(min_length=1, max_length=4000), AfterValidator(not_blank)]
        | SkipJsonSchema[None]
    ) = None
    trigger_pattern: ShortText | None = None
    steps: Steps | SkipJsonSchema[None] = None
    script: Script | None = Field(None, description="null regenerates it from the steps.")


class SkillVersion(BaseModel):
    """A previous version, as it was before an update replaced it."""

    version: int
    replaced_at: UtcDatetime
    skill: Skill


class SkillExecutionCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    success: bool
    duration_ms: float = Field(0.0, ge=0.0, le=1e10)
    failed_step: int | None = Field(
        None, ge=1, le=MAX_STEPS, description="Order of the step that failed (failures only)."
    )
    error: ShortText | None = None

    @model_validator(mode="after")
    def _failed_step_only_on_failure(self) -> SkillExecutionCreate:
        if self.success and self.failed_step is not None:
            raise ValueError("failed_step is only meaningful when success is false")
        return self


class SkillExecution(BaseModel):
    id: UUID
    skill_id: UUID
    skill_version: int
    success: bool
    duration_ms: float
    failed_step: int | None
    error: str | None
    executed_at: UtcDatetime


class SkillExecutionResult(BaseModel):
    execution: SkillExecution
    skill: Skill


class SkillDeprecate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    replaced_by: UUID | None = None


class SkillScoreParts(BaseModel):
    """Components of a skill recall score, each in [0, 1]."""

    semantic: float = 0.0
    keyword: float = 0.0
    success_rate: float = 0.0
    base_level: float = 0.0


class SkillHit(KindHit):
    memory_type: MemoryType = MemoryType.SKILL
    score_parts: SkillScoreParts
    skill: Skill


class SkillRecallRequest(KindRecallRequest):
    domain: ShortText | None = None
    include_deprecated: bool = False


class SkillRecallResult(KindRecallResult[SkillHit]):
    pass


class HowToRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    task: str = Field(min_length=1, max_length=4000)
    domain: ShortText | None = None
    learn: bool = True


class HowTo(BaseModel):
    """The best skill for a task. ``confidence = 0.7 · similarity + 0.3 · success_rate``
    (similarity is the cosine clipped to [0, 1]); ``skill`` is null when none matches."""

    task: str
    skill: Skill | None
    steps: list[SkillStep]
    similarity: float
    success_rate: float
    confidence: float
    confidence_formula: str
    alternatives: list[SkillHit] = Field(default_factory=list)
