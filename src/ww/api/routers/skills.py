"""``/api/v1/skills``: how to do things, how well each way has worked, and which to use."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel, Field

from ww.api.deps import SessionDep
from ww.api.errors import ApiError, ErrorEnvelope
from ww.engine.procedural import InvalidSkillError, ProceduralMemory
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

_ERRORS: dict[int | str, dict[str, object]] = {
    400: {"model": ErrorEnvelope},
    404: {"model": ErrorEnvelope},
    413: {"model": ErrorEnvelope},
    422: {"model": ErrorEnvelope},
    503: {"model": ErrorEnvelope},
}

router = APIRouter(prefix="/api/v1/skills", tags=["skills"], responses=_ERRORS)

_NOT_FOUND = "skill not found"


async def get_procedural(request: Request) -> ProceduralMemory:
    procedural: ProceduralMemory = request.app.state.procedural
    return procedural


ProceduralDep = Annotated[ProceduralMemory, Depends(get_procedural)]


class SkillList(BaseModel):
    items: list[Skill]
    next_cursor: str | None = Field(
        None, description="Pass as `cursor` to get the next page; null on the last."
    )


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
    domain: Annotated[str | None, Query(max_length=512)] = None,
    include_deprecated: bool = False,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
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
    skill = await proc.get(session, skill_id)
    if skill is None:
        raise ApiError(404, _NOT_FOUND)
    return skill


@router.patch("/{skill_id}", response_model=Skill)
async def update_skill(
    skill_id: UUID, body: SkillUpdate, proc: ProceduralDep, session: SessionDep
) -> Skill:
    try:
        skill = await proc.update(session, skill_id, body)
    except InvalidSkillError as exc:
        raise ApiError(422, str(exc)) from None
    if skill is None:
        raise ApiError(404, _NOT_FOUND)
    return skill


@router.get("/{skill_id}/versions", response_model=SkillVersions)
async def skill_versions(skill_id: UUID, proc: ProceduralDep, session: SessionDep) -> SkillVersions:
    skill = await proc.get(session, skill_id)
    previous = await proc.versions(session, skill_id)
    if skill is None or previous is None:
        raise ApiError(404, _NOT_FOUND)
    return SkillVersions(current=skill, previous=previous)


@router.delete("/{skill_id}", status_code=204, response_class=Response)
async def delete_skill(skill_id: UUID, proc: ProceduralDep, session: SessionDep) -> Response:
    if not await proc.delete(session, skill_id):
        raise ApiError(404, _NOT_FOUND)
    return Response(status_code=204)


@router.post("/{skill_id}/execute", response_model=SkillExecutionResult)
async def execute_skill(
    skill_id: UUID, body: SkillExecutionCreate, proc: ProceduralDep, session: SessionDep
) -> SkillExecutionResult:
    """Record the outcome of running the skill; updates its success posterior."""
    try:
        result = await proc.execute(session, skill_id, body)
    except InvalidSkillError as exc:
        raise ApiError(422, str(exc)) from None
    if result is None:
        raise ApiError(404, _NOT_FOUND)
    return result


@router.get("/{skill_id}/executions", response_model=ExecutionList)
async def list_executions(
    skill_id: UUID,
    proc: ProceduralDep,
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> ExecutionList:
    items = await proc.executions(session, skill_id, limit)
    if items is None:
        raise ApiError(404, _NOT_FOUND)
    return ExecutionList(items=items)


@router.post("/{skill_id}/deprecate", response_model=Skill)
async def deprecate_skill(
    skill_id: UUID, proc: ProceduralDep, session: SessionDep, body: SkillDeprecate | None = None
) -> Skill:
    try:
        # Without a body (or without the field) an earlier replacement is kept; an
        # explicit null clears it.
        given = body is not None and "replaced_by" in body.model_fields_set
        replaced_by = body.replaced_by if body is not None else None
        skill = await proc.deprecate(session, skill_id, replaced_by, replace=given)
    except InvalidSkillError as exc:
        raise ApiError(422, str(exc)) from None
    if skill is None:
        raise ApiError(404, "skill or replacement not found")
    return skill
