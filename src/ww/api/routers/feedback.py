"""``/api/v1/feedback``: rewards for what a recall returned drive the learning dynamics."""

from __future__ import annotations

from typing import Annotated, Self
from uuid import UUID

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field, model_validator

from ww.api.deps import EngineDep, SessionDep
from ww.api.errors import ApiError
from ww.api.idempotency import IdempotentRoute
from ww.api.routers.common import errors
from ww.engine import FeedbackOutcome, MemoryNotInRecallError, RecallNotFoundError

__all__ = ["FeedbackChange", "FeedbackRequest", "FeedbackResponse", "router"]


router = APIRouter(
    prefix="/api/v1/feedback", tags=["feedback"], responses=errors(404), route_class=IdempotentRoute
)

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


def _change(o: FeedbackOutcome) -> FeedbackChange:
    return FeedbackChange(**{k: getattr(o, k) for k in FeedbackChange.model_fields})


@router.post("", response_model=FeedbackResponse)
async def give_feedback(
    body: FeedbackRequest, engine: EngineDep, session: SessionDep
) -> FeedbackResponse:
    try:
        outcomes = await engine.feedback(
            session, body.recall_id, reward=body.reward, rewards=body.rewards
        )
    except RecallNotFoundError:
        raise ApiError(
            404, "recall not found (unknown, expired, another session's, or made without learn)"
        ) from None
    except MemoryNotInRecallError as exc:
        raise ApiError(404, f"memory {exc} was not returned by this recall") from None
    return FeedbackResponse(recall_id=body.recall_id, changes=[_change(o) for o in outcomes])
