"""``/api/v1/entities``: what the agent knows, its versions, relations and associations."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query, Response

from ww.api.deps import SessionDep
from ww.api.errors import ApiError
from ww.api.idempotency import IdempotentRoute
from ww.api.routers.common import (
    Cursor,
    Limit,
    Listing,
    MemoryRoutes,
    SemanticDep,
    deleted,
    errors,
    found,
    refused,
)
from ww.engine.semantic import ClosedEndError, InvalidSupersedeError, SemanticMemory
from ww.models.api import EntityHistory, EntityList, RelationList
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


_routes = MemoryRoutes(router, _ENTITY, SemanticDep, Entity)
_routes.create(EntityCreate, SemanticMemory.create)


async def _listing(
    entity_type: EntityType | None = None,
    as_of: Annotated[
        datetime | None, Query(description="Versions valid at this time (default: current).")
    ] = None,
    include_closed: Annotated[bool, Query(description="Closed versions too.")] = False,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> Listing[EntityFilter]:
    try:
        flt = EntityFilter(entity_type=entity_type, as_of=as_of, include_closed=include_closed)
    except ValueError as exc:
        raise ApiError(422, f"invalid filter: {exc}") from None
    return Listing(flt, limit, cursor)


_routes.pages("entities", EntityList, _listing)
_routes.recall("entities", EntityRecallRequest, EntityRecallResult, SemanticMemory.recall)


@router.post("/spread-activation", response_model=SpreadResult)
async def spread_activation(
    body: SpreadRequest, sem: SemanticDep, session: SessionDep
) -> SpreadResult:
    return found(await sem.spread(session, body), "seed entity")


_routes.items(
    get=SemanticMemory.get,
    update_body=EntityUpdate,
    update=SemanticMemory.update,
    delete=SemanticMemory.delete,
)


@router.post("/{entity_id}/supersede", status_code=201, response_model=Entity)
async def supersede_entity(
    entity_id: UUID, body: EntitySupersede, sem: SemanticDep, session: SessionDep
) -> Entity:
    """Close this version at the new one's ``valid_from`` and return the new version."""
    closed = refused(VersionClosedError, 409, "version_closed", "supersede the current version")
    with refused(InvalidSupersedeError), closed:
        entity = await sem.supersede(session, entity_id, body)
    return found(entity, _ENTITY)


@router.get("/{entity_id}/history", response_model=EntityHistory)
async def entity_history(entity_id: UUID, sem: SemanticDep, session: SessionDep) -> EntityHistory:
    versions = found(await sem.history(session, entity_id) or None, _ENTITY)
    return EntityHistory(lineage_id=versions[0].lineage_id, versions=versions)


@router.post("/{entity_id}/relations", status_code=201, response_model=Relation)
async def create_relation(
    entity_id: UUID, body: RelationCreate, sem: SemanticDep, session: SessionDep
) -> Relation:
    # The two conflicts are RuntimeErrors: ValueError answers every other refusal.
    closed = refused(ClosedEndError, 409, "version_closed")
    with refused(ValueError), refused(RelationExistsError, 409), closed:
        relation = await sem.relate(session, entity_id, body)
    return found(relation, _ENTITY)


@router.get("/{entity_id}/relations", response_model=RelationList)
async def list_relations(entity_id: UUID, sem: SemanticDep, session: SessionDep) -> RelationList:
    return RelationList(items=found(await sem.relations(session, entity_id), _ENTITY))


@router.delete("/{entity_id}/relations/{relation_id}", status_code=204, response_class=Response)
async def delete_relation(
    entity_id: UUID, relation_id: UUID, sem: SemanticDep, session: SessionDep
) -> Response:
    return deleted(await sem.unrelate(session, entity_id, relation_id), "relation")
