"""``/api/v1/control``: runtime flags, the emergency level and the audit of their changes.

Operator routes (``ww.api.auth``: the admin role). Bodies are JSON whatever the content type
(``ww.api.json_body``): the deployment guide's ``curl -d`` examples send none. A change
applies in this worker at once and in every other within a second (``ww.control.runtime``);
each is audited with the caller's principal id, never a key.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request
from pydantic import BaseModel

from ww.api.errors import ApiError, ErrorEnvelope
from ww.api.json_body import json_body, openapi_body
from ww.control.runtime import ControlPlane, FlagState
from ww.models.control import (
    AuditEntry,
    AuditPage,
    EmergencyChange,
    EmergencyReport,
    FlagChange,
    FlagList,
    FlagPatch,
    FlagReport,
    Level,
    PanicBody,
    RecoverBody,
)
from ww.storage.ports.control import AuditRecord, Emergency

__all__ = ["emergency_report", "router"]

router = APIRouter(
    prefix="/api/v1/control",
    tags=["control"],
    responses={s: {"model": ErrorEnvelope} for s in (400, 413, 422, 503)},
)

MAX_PAGE = 500
# Who a change is recorded as while authentication is off (no WW_API_KEY, no JWT secret).
ANONYMOUS = "anonymous"


# The guide's descriptions, and ours for the flags it does not list.
DESCRIPTIONS = {
    "ff_encoder": "Learnable FF encoding",
    "capsule_encoding": "Capsule representations",
    "lability_window": "Protein synthesis gate",
    "three_factor_learning": "Neuromodulated learning",
    "api_rate_limiting": "Request rate limits",
    "read_only_mode": "Block all writes",
    "maintenance_mode": "Block all requests but health and control",
    "telemetry": "OpenTelemetry trace export (with WW_OTEL_ENABLED)",
    "fsrs": "FSRS retrievability as a recall ranking feature",
    "actr": "ACT-R base-level activation in recall",
    "hebbian": "Hebbian co-retrieval strengthening",
    "reconsolidation": "Reconsolidation of recalled memories",
    "spreading_activation": "Spreading activation over temporal and Hebbian links",
    "query_feedback": "Ratings count again for the same or a nearly same question",
}


async def get_control(request: Request) -> ControlPlane:
    control: ControlPlane = request.app.state.control
    return control


ControlDep = Annotated[ControlPlane, Depends(get_control)]
FlagPatchBody = Annotated[FlagPatch, Depends(json_body(FlagPatch))]
PanicDep = Annotated[PanicBody, Depends(json_body(PanicBody))]
RecoverDep = Annotated[RecoverBody, Depends(json_body(RecoverBody))]


def _with_body(model: type[BaseModel], *statuses: int) -> dict[str, Any]:
    """A route's JSON body (documented as such) and its own error statuses."""
    return {
        "openapi_extra": openapi_body(model),
        "responses": {s: {"model": ErrorEnvelope} for s in statuses},
    }


FlagName = Annotated[str, Path(max_length=64)]
PageSize = Annotated[int, Query(ge=1, le=MAX_PAGE)]
# Audit ids are SQLite/Neo4j 64-bit integers: a larger cursor is a 422, not an overflow.
Before = Annotated[
    int | None,
    Query(ge=1, le=2**63 - 1, description="An audit id: entries older than it."),
]


def _who(request: Request) -> str:
    principal = getattr(request.state, "principal", None)
    return principal.id if principal is not None else ANONYMOUS


def _flag(state: FlagState) -> FlagReport:
    return FlagReport(
        name=state.name,
        enabled=state.enabled,
        default=state.default,
        description=DESCRIPTIONS.get(state.name, ""),
        source=state.source,
    )


def _known(control: ControlPlane, name: str) -> FlagState:
    try:
        return control.flag(name)
    except KeyError:
        raise ApiError(404, "no such flag (GET /api/v1/control/flags lists them)") from None


def emergency_report(e: Emergency) -> EmergencyReport:
    return EmergencyReport(level=e.level, reason=e.reason, since=e.at, set_by=e.by)


def _entry(r: AuditRecord) -> AuditEntry:
    return AuditEntry(
        id=r.id, at=r.at, who=r.who, kind=r.kind, name=r.name, old=r.old, new=r.new, reason=r.reason
    )


@router.get("/flags", response_model=FlagList)
async def list_flags(control: ControlDep) -> FlagList:
    """Every flag with its value in force now and where that value comes from."""
    return FlagList(flags=[_flag(s) for s in control.all_flags()])


@router.get("/flags/{name}", response_model=FlagReport, responses={404: {"model": ErrorEnvelope}})
async def get_flag(name: FlagName, control: ControlDep) -> FlagReport:
    return _flag(_known(control, name))


@router.patch("/flags/{name}", response_model=FlagChange, **_with_body(FlagPatch, 404))
async def set_flag(
    name: FlagName, request: Request, control: ControlDep, body: FlagPatchBody
) -> FlagChange:
    """Set a flag for every worker (within a second) and across restarts: a value set here
    wins over WW_FLAG_<NAME>."""
    _known(control, name)
    old, now = await control.set_flag(name, body.enabled, _who(request))
    return FlagChange(flag=_flag(now), previous=old)


@router.get("/audit", response_model=AuditPage)
async def audit(control: ControlDep, limit: PageSize = 50, cursor: Before = None) -> AuditPage:
    """Changes of flags and of the emergency level, newest first."""
    # One more than asked says whether another page follows.
    page = await control.audit(limit + 1, cursor)
    last = page[limit - 1].id if len(page) > limit else None
    return AuditPage(items=[_entry(r) for r in page[:limit]], next_cursor=last)


@router.get("/emergency", response_model=EmergencyReport)
async def get_emergency(control: ControlDep) -> EmergencyReport:
    return emergency_report(control.emergency)


@router.post("/emergency/panic", response_model=EmergencyChange, **_with_body(PanicBody))
async def panic(request: Request, control: ControlDep, body: PanicDep) -> EmergencyChange:
    """LIMITED: every write gets 503; LOCKDOWN: everything but health, docs and control
    gets 503. In force in every worker within a second, and across restarts."""
    old = await control.set_emergency(Level(body.level), body.reason, _who(request))
    return EmergencyChange(emergency=emergency_report(control.emergency), previous=old.level)


@router.post("/emergency/recover", response_model=EmergencyChange, **_with_body(RecoverBody, 409))
async def recover(request: Request, control: ControlDep, body: RecoverDep) -> EmergencyChange:
    """Lower the level (to NONE, or from LOCKDOWN to LIMITED); raising it is panic's."""
    order = list(Level)
    if order.index(Level(body.level)) > order.index(control.emergency.level):
        raise ApiError(409, f"recover lowers the level; it is {control.emergency.level.value}")
    old = await control.set_emergency(Level(body.level), body.reason, _who(request))
    return EmergencyChange(emergency=emergency_report(control.emergency), previous=old.level)
