"""``/api/v1/control/circuits``: list the circuit breakers and reset one by hand.

Operator routes (``AuthMiddleware`` asks for the admin role on ``/api/v1/control/*``). The
breakers are the answering worker's: with ``WW_API_WORKERS`` > 1 each worker has its own, and
``worker_pid`` says whose answered (see docs/operations.md for resetting every worker).

The reset body is read whatever its ``Content-Type`` (``ww.api.json_body``): the deployment
guide's ``curl -d '{"action": "reset"}'`` sends it as a form, and must work as written.
"""

from __future__ import annotations

import os
from dataclasses import asdict
from typing import Annotated

from fastapi import APIRouter, Depends, Path

from ww.api.deps import EngineDep
from ww.api.errors import ApiError
from ww.api.json_body import json_body, openapi_body
from ww.api.routers.common import errors
from ww.control.circuits import CIRCUIT_NAMES, Breaker
from ww.models.control import CircuitAction, CircuitList, CircuitReport

__all__ = ["report", "router"]

router = APIRouter(prefix="/api/v1/control/circuits", tags=["control"], responses=errors(404))

CircuitName = Annotated[
    str, Path(max_length=64, description="One of " + ", ".join(CIRCUIT_NAMES) + ".")
]


def report(breaker: Breaker) -> CircuitReport:
    return CircuitReport(**asdict(breaker.snapshot()), worker_pid=os.getpid())


def _breaker(engine: EngineDep, name: str) -> Breaker:
    try:
        return engine.circuits.get(name)
    except KeyError:
        raise ApiError(404, "circuit not found; circuits: " + ", ".join(CIRCUIT_NAMES)) from None


@router.get("", response_model=CircuitList, summary="List the circuit breakers")
async def list_circuits(engine: EngineDep) -> CircuitList:
    return CircuitList(circuits=[report(b) for b in engine.circuits])


@router.get("/{name}", response_model=CircuitReport, summary="Get a circuit breaker")
async def get_circuit(engine: EngineDep, name: CircuitName) -> CircuitReport:
    return report(_breaker(engine, name))


@router.post(
    "/{name}",
    response_model=CircuitReport,
    summary="Reset a circuit breaker",
    openapi_extra=openapi_body(CircuitAction),
)
async def act_on_circuit(
    engine: EngineDep,
    name: CircuitName,
    body: Annotated[CircuitAction, Depends(json_body(CircuitAction))],
) -> CircuitReport:
    """`{"action": "reset"}` closes the circuit of the worker that answers: its next call
    goes to the dependency. The body is read as JSON whatever its Content-Type."""
    breaker = _breaker(engine, name)
    breaker.reset()
    return report(breaker)
