"""What the routers share: error responses, the memory dependencies, list parameters,
pages, 404s and domain errors answered as a 4xx.

Every router documents the same error envelope, pages lists the same way and answers an
unknown id with the same 404; this module is that one place.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Generic, TypeVar

from fastapi import Depends, Query, Response
from pydantic import BaseModel, Field

from ww.api.deps import from_state
from ww.api.errors import ApiError, ErrorEnvelope
from ww.engine.procedural import ProceduralMemory
from ww.engine.semantic import SemanticMemory

__all__ = [
    "Cursor",
    "Limit",
    "Page",
    "ProceduralDep",
    "SemanticDep",
    "TextFilter",
    "deleted",
    "errors",
    "found",
    "refused",
]

T = TypeVar("T")

Limit = Annotated[int, Query(ge=1, le=200)]
Cursor = Annotated[str | None, Query(max_length=512)]
# A list filter on a short text field (project, speaker, domain); optional like the cursor.
TextFilter = Annotated[str | None, Query(max_length=512)]


def errors(*statuses: int) -> dict[int | str, dict[str, object]]:
    """OpenAPI ``responses`` for these statuses, each the error envelope; the statuses
    every request can meet (bad session header, body too large, validation, a store
    down) come with them."""
    return {s: {"model": ErrorEnvelope} for s in sorted({400, 413, 422, 503, *statuses})}


@contextmanager
def refused(error: type[Exception], status: int = 422) -> Iterator[None]:
    """Answer ``error`` raised inside with ``status`` and the error's own message."""
    try:
        yield
    except error as exc:
        raise ApiError(status, str(exc)) from None


def found(value: T | None, what: str) -> T:
    """``value``, or the 404 that names what was not found."""
    if value is None:
        raise ApiError(404, f"{what} not found")
    return value


def deleted(done: bool, what: str) -> Response:
    """The 204 of a delete that removed something, or the 404 that names what was absent."""
    found(done or None, what)
    return Response(status_code=204)


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None = Field(
        None, description="Pass as `cursor` to get the next page; null on the last."
    )


get_semantic = from_state("semantic", SemanticMemory)
get_procedural = from_state("procedural", ProceduralMemory)


SemanticDep = Annotated[SemanticMemory, Depends(get_semantic)]
ProceduralDep = Annotated[ProceduralMemory, Depends(get_procedural)]
