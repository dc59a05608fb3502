"""What the memory routers share: error responses, the memory dependencies, pages and 404s.

Every router of a kind of memory documents the same error envelope, pages lists the same
way and answers an unknown id with the same 404; this module is that one place.
"""

from __future__ import annotations

from typing import Annotated, Generic, TypeVar

from fastapi import Depends, Query, Request
from pydantic import BaseModel, Field

from ww.api.errors import ApiError, ErrorEnvelope
from ww.engine.procedural import ProceduralMemory
from ww.engine.semantic import SemanticMemory

__all__ = [
    "Cursor",
    "Limit",
    "Page",
    "ProceduralDep",
    "SemanticDep",
    "errors",
    "found",
]

T = TypeVar("T")

Limit = Annotated[int, Query(ge=1, le=200)]
Cursor = Annotated[str | None, Query(max_length=512)]


def errors(*statuses: int) -> dict[int | str, dict[str, object]]:
    """OpenAPI ``responses`` for these statuses, each the error envelope; the statuses
    every request can meet (bad session header, body too large, validation, a store
    down) come with them."""
    return {s: {"model": ErrorEnvelope} for s in sorted({400, 413, 422, 503, *statuses})}


def found(value: T | None, what: str) -> T:
    """``value``, or the 404 that names what was not found."""
    if value is None:
        raise ApiError(404, f"{what} not found")
    return value


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None = Field(
        None, description="Pass as `cursor` to get the next page; null on the last."
    )


async def get_semantic(request: Request) -> SemanticMemory:
    semantic: SemanticMemory = request.app.state.semantic
    return semantic


async def get_procedural(request: Request) -> ProceduralMemory:
    procedural: ProceduralMemory = request.app.state.procedural
    return procedural


SemanticDep = Annotated[SemanticMemory, Depends(get_semantic)]
ProceduralDep = Annotated[ProceduralMemory, Depends(get_procedural)]
