"""``/api/v1/episodes``: what happened, and recalling it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query, Response
from pydantic import ValidationError

from ww.api.deps import EngineDep, SessionDep
from ww.api.errors import ApiError
from ww.api.idempotency import IdempotentRoute
from ww.api.routers.common import Cursor, Limit, MemoryRoutes, TextFilter, errors, found
from ww.api.routers.consolidate import ConsolidatorDep
from ww.api.schemas import (
    BatchCreate,
    BatchCreated,
    EpisodeCreateBody,
    EpisodeList,
    EpisodeState,
    ImportanceBody,
    RecallRequest,
)
from ww.engine import MemoryEngine
from ww.engine.inspection import episode_state
from ww.engine.memory import ExternalIdConflictError
from ww.models import Episode, EpisodeCreate, EpisodeFilter, EpisodeUpdate, Outcome, RecallResult

__all__ = ["router"]

router = APIRouter(
    prefix="/api/v1/episodes", tags=["episodes"], responses=errors(404), route_class=IdempotentRoute
)

_EPISODE = "episode"
_OUT_OF_RANGE = {"int64_range"}


@router.post(
    "",
    status_code=201,
    response_model=Episode,
    responses={200: {"model": Episode, "description": "the existing episode (return_existing)"}},
)
async def create_episode(
    body: EpisodeCreateBody, engine: EngineDep, session: SessionDep, response: Response
) -> Episode:
    item = EpisodeCreate.model_validate(body.model_dump(exclude={"on_conflict"}))
    if body.on_conflict is None or item.external_id is None:
        (episode,) = await engine.create_episodes(session, [item])
        return episode
    with _conflicts():
        ((episode, created),) = await engine.create_episodes_once(
            session, [item], all_or_nothing=body.on_conflict == "error"
        )
    if not created:
        response.status_code = 200
    return episode


@router.post("/batch", status_code=201, response_model=BatchCreated)
async def create_episodes(
    body: BatchCreate, engine: EngineDep, session: SessionDep
) -> BatchCreated:
    if body.on_conflict is None:
        episodes = await engine.create_episodes(session, body.episodes)
        return BatchCreated(count=len(episodes), episodes=episodes)
    given = [ep.external_id for ep in body.episodes if ep.external_id is not None]
    if body.on_conflict == "error" and len(set(given)) < len(given):
        raise ApiError(
            409,
            "two episodes of the batch have one external_id; nothing was stored",
            code="external_id_conflict",
        )
    with _conflicts():
        answers = await engine.create_episodes_once(
            session, body.episodes, all_or_nothing=body.on_conflict == "error"
        )
    existing = sum(not created for _, created in answers)
    episodes = [ep for ep, _ in answers]
    return BatchCreated(count=len(episodes), episodes=episodes, existing=existing)


@contextmanager
def _conflicts() -> Iterator[None]:
    try:
        yield
    except ExternalIdConflictError as exc:
        raise ApiError(409, str(exc), code="external_id_conflict") from None


@router.get("", response_model=EpisodeList)
async def list_episodes(
    engine: EngineDep,
    session: SessionDep,
    time_from: datetime | None = None,
    time_to: datetime | None = None,
    outcome: Outcome | None = None,
    project: TextFilter = None,
    speaker: TextFilter = None,
    metadata: Annotated[
        str | None,
        Query(max_length=4096, description='Exact-match filter as a JSON object: {"k": "v"}'),
    ] = None,
    include_archived: bool = False,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> EpisodeList:
    try:
        meta = json.loads(metadata) if metadata else {}
    except ValueError:
        raise ApiError(400, 'invalid metadata filter: not JSON, e.g. {"k": "v"}') from None
    try:
        flt = EpisodeFilter(
            time_from=time_from,
            time_to=time_to,
            outcome=outcome,
            project=project,
            speaker=speaker,
            metadata=meta,
            include_archived=include_archived,
        )
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'filter'}: {e['msg']}" for e in exc.errors()
        )
        # A malformed metadata object is a bad parameter (400); a well-formed one with an
        # integer outside 64 bits, or a time that cannot exist in UTC, is a validation
        # failure like any other (422).
        malformed = [
            e
            for e in exc.errors()
            if e["loc"][:1] == ("metadata",) and e["type"] not in _OUT_OF_RANGE
        ]
        status = 400 if malformed else 422
        raise ApiError(status, f"invalid filter: {problems}") from None
    page = await engine.list_episodes(session, flt, limit, cursor)
    return EpisodeList(items=page.items, next_cursor=page.next_cursor)


@router.post("/recall", response_model=RecallResult)
async def recall_episodes(
    body: RecallRequest, engine: EngineDep, session: SessionDep
) -> RecallResult:
    return await engine.recall_episodes(
        session,
        body.query,
        limit=body.limit,
        flt=body.filters,
        preset=body.preset,
        learn=body.learn,
        at=body.at,
        min_relevance=body.min_relevance,
    )


MemoryRoutes(router, _EPISODE, EngineDep, Episode).items(
    get=MemoryEngine.get_episode,
    update_body=EpisodeUpdate,
    update=MemoryEngine.update_episode,
    delete=MemoryEngine.delete_episode,
)


@router.post("/{episode_id}/mark-important", response_model=Episode)
async def mark_important(
    episode_id: UUID, engine: EngineDep, session: SessionDep, body: ImportanceBody | None = None
) -> Episode:
    importance = (body or ImportanceBody()).importance
    return found(await engine.mark_important(session, episode_id, importance), _EPISODE)


@router.get("/{episode_id}/state", response_model=EpisodeState)
async def get_episode_state(
    episode_id: UUID, consolidator: ConsolidatorDep, session: SessionDep
) -> EpisodeState:
    """The episode with its learning state (FSRS retrievability now, learned value, recent
    accesses) and its links: temporal neighbours, the strongest co-retrieval edges and
    consolidation links. Read-only: reading it records no access."""
    state = await episode_state(consolidator.engine, consolidator, session, episode_id)
    return found(state, _EPISODE)
