"""``/``, ``/api/v1/health`` and ``/api/v1/auth/whoami``."""

from __future__ import annotations

import os
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from ww import __version__
from ww.api.control_gate import blocked
from ww.api.deps import EngineDep, SettingsDep
from ww.api.disk import disk_report
from ww.api.keys import Principal, Role
from ww.api.schemas import ControlHealth, HealthReport
from ww.control.runtime import ControlPlane
from ww.models.api import Caller
from ww.storage.factory import disk_guard

__all__ = ["router"]

router = APIRouter(tags=["system"])


@router.get("/", summary="Describe the API")
async def root(request: Request) -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = request.app.openapi()["paths"]
    routes = sorted(f"{method.upper()} {path}" for path, ops in paths.items() for method in ops)
    return {
        "name": "World Weaver",
        "description": "Long-term memory for AI agents",
        "version": __version__,
        "docs": "/docs",
        "redoc": "/redoc",
        "openapi": "/openapi.json",
        "health": "/api/v1/health",
        "endpoints": routes,
    }


# HEAD for probes that only read the status (FastAPI adds HEAD to no GET route by itself);
# its own route, out of the schema, so the operation id of GET stays unique.
@router.head("/api/v1/health", include_in_schema=False)
@router.get(
    "/api/v1/health",
    response_model=HealthReport,
    responses={503: {"model": HealthReport, "description": "a component is failing"}},
)
async def health(request: Request, engine: EngineDep, settings: SettingsDep) -> JSONResponse:
    """``ok``; ``degraded`` (still 200: reads, recall and deletes are served) while the
    data directory is below ``WW_MIN_FREE_DISK_MB`` or a store found the disk full in the
    last minute; ``unavailable`` (503) while a component fails, or its circuit breaker is
    open (the check is refused at once, as every call of the component is). ``control``
    shows the emergency level and the blocking flags: health itself stays 200 under them."""
    components = await engine.health()
    ok = all(v == "ok" for v in components.values())
    disk, degraded = disk_report(disk_guard(settings))
    report = HealthReport(
        status="unavailable" if not ok else "degraded" if degraded else "ok",
        version=__version__,
        components=components,
        worker_pid=os.getpid(),
        disk=disk,
        control=_control(request.app.state.control),
        circuits={breaker.name: breaker.state.value for breaker in engine.circuits},
    )
    return JSONResponse(report.model_dump(mode="json"), status_code=200 if ok else 503)


@router.get("/api/v1/auth/whoami", response_model=Caller)
async def whoami(request: Request) -> Caller:
    """Who the credential names: its key id, role and the sessions it is bound to, so a
    client offers the operator views and the session list only to an admin. Needs a valid
    credential but no session: a bound key learns its own sessions here."""
    principal: Principal | None = getattr(request.state, "principal", None)
    if principal is None:  # auth is off: every route is open
        return Caller(auth=False, id=None, role="admin", sessions=None)
    sessions = sorted(principal.sessions) if principal.sessions is not None else None
    role = "admin" if principal.role is Role.ADMIN else "user"
    return Caller(auth=True, id=principal.id, role=role, sessions=sessions)


def _control(control: ControlPlane) -> ControlHealth:
    e, f = control.emergency, control.flags()
    # Whether a plain write (an episode) would pass the gate now.
    writes = "refused" if blocked(control, "POST", "/api/v1/episodes") else "accepted"
    modes = {"read_only_mode": f.read_only_mode, "maintenance_mode": f.maintenance_mode}
    return ControlHealth.model_validate(
        {"level": e.level, "reason": e.reason, "since": e.at, "writes": writes, **modes}
    )
