"""``/api/v1/entities``: what the agent knows, its versions, relations and associations."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel, Field

from ww.api.deps import SessionDep
from ww.api.errors import ApiError, ErrorEnvelope
from ww.engine.semantic import ClosedEndError, InvalidSupersedeError, SemanticMemory
from ww.models.semantic import (
    Entity,
    EntityCreate,
    EntityFilter,
    EntityRecallRequest,
    EntityRecallResult,
    EntitySupersede,
    EntityType,
    EntityUpdate,
    Relation,
    RelationCreate,
    SpreadRequest,
    SpreadResult,
)
from ww.storage.ports.entities import RelationExistsError, VersionClosedError

__all__ = ["EntityList", "RelationList", "router"]

_ERRORS: dict[int | str, dict[str, object]] = {
    400: {"model": ErrorEnvelope},
    404: {"model": ErrorEnvelope},
    409: {"model": ErrorEnvelope},
    413: {"model": ErrorEnvelope},
    422: {"model": ErrorEnvelope},
    503: {"model": ErrorEnvelope},
}

router = APIRouter(prefix="/api/v1/entities", tags=["entities"], responses=_ERRORS)

_NOT_FOUND = "entity not found"


async def get_semantic(request: Request) -> SemanticMemory:
    semantic: SemanticMemory = request.app.state.semantic
    return semantic


SemanticDep = Annotated[SemanticMemory, Depends(get_semantic)]


class EntityList(BaseModel):
    items: list[Entity]
    next_cursor: str | None = Field(
        None, description="Pass as `cursor` to get the next page; null on the last."
    )


class RelationList(BaseModel):
    items: list[Relation]


class EntityHistory(BaseModel):
    lineage_id: UUID
    versions: list[Entity] = Field(description="Every version, oldest first.")


@router.post("", status_code=201, response_model=Entity)
async def create_entity(body: EntityCreate, sem: SemanticDep, session: SessionDep) -> Entity:
    return await sem.create(session, body)


@router.get("", response_model=EntityList)
async def list_entities(
    sem: SemanticDep,
    session: SessionDep,
    entity_type: EntityType | None = None,
    as_of: Annotated[
        datetime | None, Query(description="Versions valid at this time (default: current).")
    ] = None,
    include_closed: Annotated[bool, Query(description="Closed versions too.")] = False,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
) -> EntityList:
    try:
        flt = EntityFilter(entity_type=entity_type, as_of=as_of, include_closed=include_closed)
    except ValueError as exc:
        raise ApiError(422, f"invalid filter: {exc}") from None
    page = await sem.list_entities(session, flt, limit, cursor)
    return EntityList(items=page.items, next_cursor=page.next_cursor)


@router.post("/recall", response_model=EntityRecallResult)
async def recall_entities(
    body: EntityRecallRequest, sem: SemanticDep, session: SessionDep
) -> EntityRecallResult:
    return await sem.recall(session, body)


@router.post("/spread-activation", response_model=SpreadResult)
async def spread_activation(
    body: SpreadRequest, sem: SemanticDep, session: SessionDep
) -> SpreadResult:
    result = await sem.spread(session, body)
    if result is None:
        raise ApiError(404, "seed entity not found")
    return result


@router.get("/{entity_id}", response_model=Entity)
async def get_entity(entity_id: UUID, sem: SemanticDep, session: SessionDep) -> Entity:
    entity = await sem.get(session, entity_id)
    if entity is None:
        raise ApiError(404, _NOT_FOUND)
    return entity


@router.patch("/{entity_id}", response_model=Entity)
async def update_entity(
    entity_id: UUID, body: EntityUpdate, sem: SemanticDep, session: SessionDep
) -> Entity:
    entity = await sem.update(session, entity_id, body)
    if entity is None:
        raise ApiError(404, _NOT_FOUND)
    return entity


@router.post("/{entity_id}/supersede", status_code=201, response_model=Entity)
async def supersede_entity(
    entity_id: UUID, body: EntitySupersede, sem: SemanticDep, session: SessionDep
) -> Entity:
    """Close this version at the new one's ``valid_from`` and return the new version."""
    try:
        entity = await sem.supersede(session, entity_id, body)
    except VersionClosedError as exc:
        raise ApiError(
            409, f"{exc}; supersede the current version", code="version_closed"
        ) from None
    except InvalidSupersedeError as exc:
        raise ApiError(422, str(exc)) from None
    if entity is None:
        raise ApiError(404, _NOT_FOUND)
    return entity


@router.get("/{entity_id}/history", response_model=EntityHistory)
async def entity_history(entity_id: UUID, sem: SemanticDep, session: SessionDep) -> EntityHistory:
    versions = await sem.history(session, entity_id)
    if not versions:
        raise ApiError(404, _NOT_FOUND)
    return EntityHistory(lineage_id=versions[0].lineage_id, versions=versions)


@router.delete("/{entity_id}", status_code=204, response_class=Response)
async def delete_entity(entity_id: UUID, sem: SemanticDep, session: SessionDep) -> Response:
    if not await sem.delete(session, entity_id):
        raise ApiError(404, _NOT_FOUND)
    return Response(status_code=204)


@router.post("/{entity_id}/relations", status_code=201, response_model=Relation)
async def create_relation(
    entity_id: UUID, body: RelationCreate, sem: SemanticDep, session: SessionDep
) -> Relation:
    try:
        relation = await sem.relate(session, entity_id, body)
    except RelationExistsError as exc:
        raise ApiError(409, str(exc)) from None
    except ClosedEndError as exc:
        raise ApiError(409, str(exc), code="version_closed") from None
    except ValueError as exc:
        raise ApiError(422, str(exc)) from None
    if relation is None:
        raise ApiError(404, _NOT_FOUND)
    return relation


@router.get("/{entity_id}/relations", response_model=RelationList)
async def list_relations(entity_id: UUID, sem: SemanticDep, session: SessionDep) -> RelationList:
    relations = await sem.relations(session, entity_id)
    if relations is None:
        raise ApiError(404, _NOT_FOUND)
    return RelationList(items=relations)


@router.delete("/{entity_id}/relations/{relation_id}", status_code=204, response_class=Response)
async def delete_relation(
    entity_id: UUID, relation_id: UUID, sem: SemanticDep, session: SessionDep
) -> Response:
    if not await sem.unrelate(session, entity_id, relation_id):
        raise ApiError(404, "relation not found")
    return Response(status_code=204)
