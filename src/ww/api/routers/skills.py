"""``/api/v1/skills``: how to do things, how well each way has worked, and which to use."""

from __future__ import annotations

from uuid import UUID

from fastapi import APIRouter, Response
from pydantic import BaseModel, Field

from ww.api.deps import SessionDep
from ww.api.idempotency import IdempotentRoute
from ww.api.routers.common import (
    Cursor,
    Limit,
    Page,
    ProceduralDep,
    TextFilter,
    deleted,
    errors,
    found,
    refused,
)
from ww.engine.procedural import InvalidSkillError
from ww.models.procedural import (
    HowTo,
    HowToRequest,
    Skill,
    SkillCreate,
    SkillDeprecate,
    SkillExecution,
    SkillExecutionCreate,
    SkillExecutionResult,
    SkillRecallRequest,
    SkillRecallResult,
    SkillUpdate,
    SkillVersion,
)
from ww.storage.ports.skills import SkillFilter

__all__ = ["SkillList", "router"]

router = APIRouter(
    prefix="/api/v1/skills", tags=["skills"], responses=errors(404), route_class=IdempotentRoute
)

_SKILL = "skill"


class SkillList(Page[Skill]):
    pass


class SkillVersions(BaseModel):
    current: Skill
    previous: list[SkillVersion] = Field(description="Earlier versions, oldest first.")


class ExecutionList(BaseModel):
    items: list[SkillExecution]


@router.post("", status_code=201, response_model=Skill)
async def create_skill(body: SkillCreate, proc: ProceduralDep, session: SessionDep) -> Skill:
    return await proc.create(session, body)


@router.get("", response_model=SkillList)
async def list_skills(
    proc: ProceduralDep,
    session: SessionDep,
    domain: TextFilter = None,
    include_deprecated: bool = False,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> SkillList:
    flt = SkillFilter(domain=domain, include_deprecated=include_deprecated)
    page = await proc.list_skills(session, flt, limit, cursor)
    return SkillList(items=page.items, next_cursor=page.next_cursor)


@router.post("/recall", response_model=SkillRecallResult)
async def recall_skills(
    body: SkillRecallRequest, proc: ProceduralDep, session: SessionDep
) -> SkillRecallResult:
    return await proc.recall(session, body)


@router.post("/how-to", response_model=HowTo)
async def how_to(body: HowToRequest, proc: ProceduralDep, session: SessionDep) -> HowTo:
    """The best live skill for a task, with its steps and how confident the choice is."""
    return await proc.how_to(session, body)


@router.get("/{skill_id}", response_model=Skill)
async def get_skill(skill_id: UUID, proc: ProceduralDep, session: SessionDep) -> Skill:
    return found(await proc.get(session, skill_id), _SKILL)


@router.patch("/{skill_id}", response_model=Skill)
async def update_skill(
    skill_id: UUID, body: SkillUpdate, proc: ProceduralDep, session: SessionDep
) -> Skill:
    with refused(InvalidSkillError):
        skill = await proc.update(session, skill_id, body)
    return found(skill, _SKILL)


@router.get("/{skill_id}/versions", response_model=SkillVersions)
async def skill_versions(skill_id: UUID, proc: ProceduralDep, session: SessionDep) -> SkillVersions:
    skill = await proc.get(session, skill_id)
    previous = await proc.versions(session, skill_id)
    return SkillVersions(current=found(skill, _SKILL), previous=found(previous, _SKILL))


@router.delete("/{skill_id}", status_code=204, response_class=Response)
async def delete_skill(skill_id: UUID, proc: ProceduralDep, session: SessionDep) -> Response:
    return deleted(await proc.delete(session, skill_id), _SKILL)


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
