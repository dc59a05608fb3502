"""``/api/v1/sessions``: the operator's view of sessions."""

from __future__ import annotations

import re
from typing import Annotated

from fastapi import APIRouter, Path, Query, Request

from ww.api.deps import EngineDep, check_session
from ww.api.errors import ApiError, ErrorEnvelope
from ww.api.schemas import SessionDeleted, SessionList
from ww.config import SESSION_ID_PATTERN
from ww.models import SessionStats
from ww.storage.ports import InvalidCursorError

__all__ = ["router"]

router = APIRouter(
    prefix="/api/v1/sessions",
    tags=["sessions"],
    responses={
        400: {"model": ErrorEnvelope},
        404: {"model": ErrorEnvelope},
        422: {"model": ErrorEnvelope},
    },
)

SessionPath = Annotated[str, Path(pattern=SESSION_ID_PATTERN, max_length=128)]
MAX_PAGE = 500
# The cursor is the last session id of the page before.
_SESSION_ID = re.compile(SESSION_ID_PATTERN)


@router.get("", response_model=SessionList)
async def list_sessions(
    engine: EngineDep,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 100,
    cursor: Annotated[str | None, Query(max_length=128)] = None,
) -> SessionList:
    """Sessions in id order with what each holds, a page at a time."""
    if cursor is not None and not _SESSION_ID.fullmatch(cursor):
        raise InvalidCursorError("invalid cursor: pass back a next_cursor unchanged")
    # One more than asked says whether another page follows.
    page = await engine.session_stats_page(limit + 1, cursor)
    more = len(page) > limit
    page = page[:limit]
    return SessionList(sessions=page, next_cursor=page[-1].session_id if more else None)


@router.get("/{session_id}", response_model=SessionStats)
async def session_stats(
    session_id: SessionPath, engine: EngineDep, request: Request
) -> SessionStats:
    # The answer of a session that does not exist, for one the caller's key may not use.
    check_session(request, session_id, "session not found")
    stats = await engine.session_stats(session_id)
    if stats is None:
        raise ApiError(404, "session not found")
    return stats


@router.delete("/{session_id}", response_model=SessionDeleted)
async def delete_session(session_id: SessionPath, engine: EngineDep) -> SessionDeleted:
    held = await engine.delete_session_counted(session_id)
    if held is None:
        raise ApiError(404, "session not found")
    return SessionDeleted(
        session_id=session_id,
        deleted_episodes=held.episodes,
        deleted_entities=held.entities,
        deleted_skills=held.skills,
    )
