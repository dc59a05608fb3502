"""``/api/v1/recall``: one query over every memory type, one fused ranking."""

from __future__ import annotations

from fastapi import APIRouter, Request

from ww.api.deps import SessionDep
from ww.api.idempotency import IdempotentRoute
from ww.api.routers.common import errors
from ww.engine.unified import UnifiedRecall
from ww.models.unified import UnifiedRecallRequest, UnifiedRecallResult

__all__ = ["router"]


router = APIRouter(
    prefix="/api/v1", tags=["recall"], responses=errors(), route_class=IdempotentRoute
)


@router.post("/recall", response_model=UnifiedRecallResult)
async def recall(
    body: UnifiedRecallRequest, request: Request, session: SessionDep
) -> UnifiedRecallResult:
    """Episodes, entities and skills for one query, ranked together.

    Each type is recalled by its own pipeline (filters that do not apply to a type are
    ignored for it, see the request schema); scores are divided by the most the type's
    weights can give, so they are comparable in [0, 1]."""
    state = request.app.state
    unified = UnifiedRecall(state.engine, state.semantic, state.procedural)
    return await unified.recall(session, body)
