"""``/api/v1/sessions``: the operator's view of sessions."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from ww.api.deps import EngineDep
from ww.api.errors import ApiError, ErrorEnvelope
from ww.api.schemas import SessionDeleted, SessionList
from ww.config import SESSION_ID_PATTERN
from ww.models import SessionStats

__all__ = ["router"]

router = APIRouter(
    prefix="/api/v1/sessions",
    tags=["sessions"],
    responses={404: {"model": ErrorEnvelope}, 422: {"model": ErrorEnvelope}},
)

SessionPath = Annotated[str, Path(pattern=SESSION_ID_PATTERN, max_length=128)]


@router.get("", response_model=SessionList)
async def list_sessions(engine: EngineDep) -> SessionList:
    stats = [await engine.session_stats(s) for s in await engine.list_sessions()]
    return SessionList(sessions=[s for s in stats if s is not None])


@router.get("/{session_id}", response_model=SessionStats)
async def session_stats(session_id: SessionPath, engine: EngineDep) -> SessionStats:
    stats = await engine.session_stats(session_id)
    if stats is None:
        raise ApiError(404, "session not found")
    return stats


@router.delete("/{session_id}", response_model=SessionDeleted)
async def delete_session(session_id: SessionPath, engine: EngineDep) -> SessionDeleted:
    deleted = await engine.delete_session(session_id)
    if deleted is None:
        raise ApiError(404, "session not found")
    return SessionDeleted(session_id=session_id, deleted_episodes=deleted)
