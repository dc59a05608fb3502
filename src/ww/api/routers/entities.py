"""``/api/v1/entities``: what the agent knows, its versions, relations and associations."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, Field

from ww.api.deps import SessionDep
from ww.api.errors import ApiError
from ww.api.idempotency import IdempotentRoute
from ww.api.routers.common import Cursor, Limit, Page, SemanticDep, deleted, errors, found
from ww.engine.semantic import ClosedEndError, InvalidSupersedeError
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

router = APIRouter(
    prefix="/api/v1/entities",
    tags=["entities"],
    responses=errors(404, 409),
    route_class=IdempotentRoute,
)

_ENTITY = "entity"


class EntityList(Page[Entity]):
    pass


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
    limit: Limit = 50,
    cursor: Cursor = None,
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
    return found(await sem.spread(session, body), "seed entity")


@router.get("/{entity_id}", response_model=Entity)
async def get_entity(entity_id: UUID, sem: SemanticDep, session: SessionDep) -> Entity:
    return found(await sem.get(session, entity_id), _ENTITY)


@router.patch("/{entity_id}", response_model=Entity)
async def update_entity(
    entity_id: UUID, body: EntityUpdate, sem: SemanticDep, session: SessionDep
) -> Entity:
    return found(await sem.update(session, entity_id, body), _ENTITY)


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
    return found(entity, _ENTITY)


@router.get("/{entity_id}/history", response_model=EntityHistory)
async def entity_history(entity_id: UUID, sem: SemanticDep, session: SessionDep) -> EntityHistory:
    versions = found(await sem.history(session, entity_id) or None, _ENTITY)
    return EntityHistory(lineage_id=versions[0].lineage_id, versions=versions)


@router.delete("/{entity_id}", status_code=204, response_class=Response)
async def delete_entity(entity_id: UUID, sem: SemanticDep, session: SessionDep) -> Response:
    return deleted(await sem.delete(session, entity_id), _ENTITY)


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
    return found(relation, _ENTITY)


@router.get("/{entity_id}/relations", response_model=RelationList)
async def list_relations(entity_id: UUID, sem: SemanticDep, session: SessionDep) -> RelationList:
    return RelationList(items=found(await sem.relations(session, entity_id), _ENTITY))


@router.delete("/{entity_id}/relations/{relation_id}", status_code=204, response_class=Response)
async def delete_relation(
    entity_id: UUID, relation_id: UUID, sem: SemanticDep, session: SessionDep
) -> Response:
    return deleted(await sem.unrelate(session, entity_id, relation_id), "relation")
