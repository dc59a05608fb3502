"""``/api/v1/consolidate``: consolidation ("sleep") of the caller's session."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, Request

from ww.api.deps import SessionDep, from_state
from ww.api.errors import ApiError, ErrorEnvelope
from ww.api.idempotency import IdempotentRoute
from ww.api.routers.common import errors
from ww.engine.consolidation import Consolidator
from ww.engine.inspection import links_out
from ww.engine.procedural import ProceduralMemory
from ww.models.api import LinkList, MemoryLinkOut
from ww.models.consolidation import ConsolidationOptions, ConsolidationReport

__all__ = ["LinkList", "MemoryLinkOut", "router"]

router = APIRouter(
    prefix="/api/v1/consolidate",
    tags=["consolidate"],
    responses=errors(),
    route_class=IdempotentRoute,
)


get_consolidator = from_state("consolidator", Consolidator)


ConsolidatorDep = Annotated[Consolidator, Depends(get_consolidator)]


@router.post("", response_model=ConsolidationReport)
async def consolidate(
    consolidator: ConsolidatorDep, session: SessionDep, body: ConsolidationOptions | None = None
) -> ConsolidationReport:
    """Cluster the session's episodes into entities, merge near-duplicates, decay and prune
    relation weights, archive what is both forgotten and unimportant; report what changed.
    Nothing is deleted; a second run with nothing new changes nothing."""
    return await consolidator.consolidate(session, body or ConsolidationOptions())


@router.get(
    "/links/{memory_id}", response_model=LinkList, responses={404: {"model": ErrorEnvelope}}
)
async def links(
    memory_id: UUID, consolidator: ConsolidatorDep, session: SessionDep, request: Request
) -> LinkList:
    """Consolidation links with the memory at either end: ``CONSOLIDATED_INTO`` from an
    episode to its entity, ``DUPLICATE_OF`` from an archived duplicate to its original.
    A memory with none has an empty list; an unknown id (or one of another session) is 404."""
    if not await _exists(request, consolidator, session, memory_id):
        raise ApiError(404, "memory not found")
    found = await consolidator.links(session, memory_id)
    return LinkList(
        memory_id=memory_id,
        links=links_out(found),
    )


async def _exists(
    request: Request, consolidator: Consolidator, session: str, memory_id: UUID
) -> bool:
    """Whether the id is an episode, an entity version or a skill of the session."""
    if await consolidator.engine.get_episode(session, memory_id) is not None:
        return True
    if await consolidator.semantic.get(session, memory_id) is not None:
        return True
    procedural: ProceduralMemory = request.app.state.procedural
    return await procedural.get(session, memory_id) is not None
