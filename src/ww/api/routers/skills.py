"""``/api/v1/skills``: how to do things, how well each way has worked, and which to use."""

from __future__ import annotations

from uuid import UUID

from fastapi import APIRouter

from ww.api.deps import SessionDep
from ww.api.idempotency import IdempotentRoute
from ww.api.routers.common import (
    Cursor,
    Limit,
    Listing,
    MemoryRoutes,
    ProceduralDep,
    TextFilter,
    errors,
    found,
    refused,
)
from ww.engine.procedural import InvalidSkillError, ProceduralMemory
from ww.models.api import ExecutionList, SkillList, SkillVersions
from ww.models.procedural import (
    HowTo,
    HowToRequest,
    Skill,
    SkillCreate,
    SkillDeprecate,
    SkillExecutionCreate,
    SkillExecutionResult,
    SkillRecallRequest,
    SkillRecallResult,
    SkillUpdate,
)
from ww.storage.ports.skills import SkillFilter

__all__ = ["SkillList", "router"]

router = APIRouter(
    prefix="/api/v1/skills", tags=["skills"], responses=errors(404), route_class=IdempotentRoute
)

_SKILL = "skill"


_routes = MemoryRoutes(router, _SKILL, ProceduralDep, Skill)
_routes.create(SkillCreate, ProceduralMemory.create)


async def _listing(
    domain: TextFilter = None,
    include_deprecated: bool = False,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> Listing[SkillFilter]:
    return Listing(SkillFilter(domain=domain, include_deprecated=include_deprecated), limit, cursor)


_routes.pages("skills", SkillList, _listing)
_routes.recall("skills", SkillRecallRequest, SkillRecallResult, ProceduralMemory.recall)


@router.post("/how-to", response_model=HowTo)
async def how_to(body: HowToRequest, proc: ProceduralDep, session: SessionDep) -> HowTo:
    """The best live skill for a task, with its steps and how confident the choice is."""
    return await proc.how_to(session, body)


_routes.items(
    get=ProceduralMemory.get,
    update_body=SkillUpdate,
    update=ProceduralMemory.update,
    delete=ProceduralMemory.delete,
    refuse=(InvalidSkillError,),
)


@router.get("/{skill_id}/versions", response_model=SkillVersions)
async def skill_versions(skill_id: UUID, proc: ProceduralDep, session: SessionDep) -> SkillVersions:
    skill = await proc.get(session, skill_id)
    previous = await proc.versions(session, skill_id)
    return SkillVersions(current=found(skill, _SKILL), previous=found(previous, _SKILL))


@router.post("/{skill_id}/execute", response_model=SkillExecutionResult)
async def execute_skill(
    skill_id: UUID, body: SkillExecutionCreate, proc: ProceduralDep, session: SessionDep
) -> SkillExecutionResult:
    """Record the outcome of running the skill; updates its success posterior."""
    with refused(InvalidSkillError):
        result = await proc.execute(session, skill_id, body)
    return found(result, _SKILL)


@router.get("/{skill_id}/executions", response_model=ExecutionList)
async def list_executions(
    skill_id: UUID,
    proc: ProceduralDep,
    session: SessionDep,
    limit: Limit = 50,
) -> ExecutionList:
    return ExecutionList(items=found(await proc.executions(session, skill_id, limit), _SKILL))


@router.post("/{skill_id}/deprecate", response_model=Skill)
async def deprecate_skill(
    skill_id: UUID, proc: ProceduralDep, session: SessionDep, body: SkillDeprecate | None = None
) -> Skill:
    with refused(InvalidSkillError):
        # Without a body (or without the field) an earlier replacement is kept; an
        # explicit null clears it.
        given = body is not None and "replaced_by" in body.model_fields_set
        replaced_by = body.replaced_by if body is not None else None
        skill = await proc.deprecate(session, skill_id, replaced_by, replace=given)
    return found(skill, "skill or replacement")
