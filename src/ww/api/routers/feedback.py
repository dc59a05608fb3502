"""``/api/v1/feedback``: rewards for what a recall returned drive the learning dynamics."""

from __future__ import annotations

from fastapi import APIRouter

from ww.api.deps import EngineDep, SessionDep
from ww.api.errors import ApiError
from ww.api.idempotency import IdempotentRoute
from ww.api.routers.common import errors
from ww.engine import FeedbackOutcome, MemoryNotInRecallError, RecallNotFoundError
from ww.models.api import FeedbackChange, FeedbackRequest, FeedbackResponse

__all__ = ["FeedbackChange", "FeedbackRequest", "FeedbackResponse", "router"]


router = APIRouter(
    prefix="/api/v1/feedback", tags=["feedback"], responses=errors(404), route_class=IdempotentRoute
)


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
