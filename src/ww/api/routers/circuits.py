"""``/api/v1/control/circuits``: list the circuit breakers and reset one by hand.

Operator routes (``AuthMiddleware`` asks for the admin role on ``/api/v1/control/*``). The
breakers are the answering worker's: with ``WW_API_WORKERS`` > 1 each worker has its own, and
``worker_pid`` says whose answered (see docs/operations.md for resetting every worker).

The reset body is read whatever its ``Content-Type``: the deployment guide's
``curl -d '{"action": "reset"}'`` sends it as a form, and must work as written.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError

from ww.api.deps import EngineDep
from ww.api.errors import ApiError
from ww.api.routers.common import errors
from ww.control.circuits import CIRCUIT_NAMES, Breaker
from ww.models.control import CircuitAction, CircuitList, CircuitReport

__all__ = ["report", "router"]

router = APIRouter(prefix="/api/v1/control/circuits", tags=["control"], responses=errors(404))

CircuitName = Annotated[
    str, Path(max_length=64, description="One of " + ", ".join(CIRCUIT_NAMES) + ".")
]


async def circuit_action(request: Request) -> CircuitAction:
    """The body as JSON, as FastAPI reads a JSON body, but whatever the Content-Type; its
    errors are FastAPI's, so they reach the one error envelope as 422s."""
    raw = (await request.body()).decode("utf-8", errors="replace")
    try:
        data: Any = json.loads(raw)
    except json.JSONDecodeError as exc:
        error = {
            "type": "json_invalid",
            "loc": ("body", exc.pos),
            "msg": "JSON decode error",
            "input": {},
            "ctx": {"error": exc.msg},
        }
        raise RequestValidationError([error], body=exc.doc) from None
    try:
        return CircuitAction.model_validate(data)
    except ValidationError as exc:
        located = [{**e, "loc": ("body", *e["loc"])} for e in exc.errors(include_url=False)]
        raise RequestValidationError(located, body=data) from None


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
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": CircuitAction.model_json_schema()}},
        }
    },
)
async def act_on_circuit(
    engine: EngineDep,
    name: CircuitName,
    body: Annotated[CircuitAction, Depends(circuit_action)],
) -> CircuitReport:
    """`{"action": "reset"}` closes the circuit of the worker that answers: its next call
    goes to the dependency. The body is read as JSON whatever its Content-Type."""
    breaker = _breaker(engine, name)
    breaker.reset()
    return report(breaker)
