"""What the routers share: error responses, the memory dependencies, list parameters,
pages, 404s and domain errors answered as a 4xx.

Every router documents the same error envelope, pages lists the same way and answers an
unknown id with the same 404; this module is that one place.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Annotated, Any, Generic, TypeVar
from uuid import UUID

from fastapi import APIRouter, Depends, Query, Response
from pydantic import BaseModel

from ww.api.deps import SessionDep, from_state
from ww.api.errors import ApiError, ErrorEnvelope
from ww.engine.procedural import ProceduralMemory
from ww.engine.semantic import SemanticMemory
from ww.models.api import Page

__all__ = [
    "Cursor",
    "Limit",
    "Listing",
    "MemoryRoutes",
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
F = TypeVar("F")

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
def refused(
    error: type[Exception] | tuple[type[Exception], ...],
    status: int = 422,
    code: str | None = None,
    hint: str = "",
) -> Iterator[None]:
    """Answer ``error`` (any of them; none for an empty tuple) raised inside with ``status``
    and the error's own message, followed by ``hint`` (what to do instead) if given."""
    try:
        yield
    except error as exc:
        raise ApiError(status, f"{exc}; {hint}" if hint else str(exc), code=code) from None


def found(value: T | None, what: str) -> T:
    """``value``, or the 404 that names what was not found."""
    if value is None:
        raise ApiError(404, f"{what} not found")
    return value


def deleted(done: bool, what: str) -> Response:
    """The 204 of a delete that removed something, or the 404 that names what was absent."""
    found(done or None, what)
    return Response(status_code=204)


get_semantic = from_state("semantic", SemanticMemory)
get_procedural = from_state("procedural", ProceduralMemory)


SemanticDep = Annotated[SemanticMemory, Depends(get_semantic)]
ProceduralDep = Annotated[ProceduralMemory, Depends(get_procedural)]


def _endpoint(
    name: str, params: Sequence[tuple[str, Any]], run: Callable[..., Awaitable[Any]]
) -> Callable[..., Awaitable[Any]]:
    """``run`` as an endpoint function called ``name`` (the operation id and summary come
    from it) whose parameters FastAPI reads from ``params``: ``(name, annotation)`` pairs,
    so the path parameter keeps each kind's own name (``entity_id``) in the schema."""

    async def endpoint(**kwargs: Any) -> Any:
        return await run(**kwargs)

    endpoint.__name__ = endpoint.__qualname__ = name
    kw = inspect.Parameter.KEYWORD_ONLY
    signature = inspect.Signature([inspect.Parameter(n, kw, annotation=a) for n, a in params])
    setattr(endpoint, "__signature__", signature)  # noqa: B010 (mypy: no such attribute)
    return endpoint


@dataclass(frozen=True, slots=True)
class Listing(Generic[F]):
    """A list request's filter and page, as a kind's listing dependency reads them from the
    query."""

    filter: F
    limit: int
    cursor: str | None


@dataclass(frozen=True, slots=True)
class MemoryRoutes:
    """The routes every kind of memory answers alike, registered on the kind's router:
    ``create`` (POST ""), ``pages`` (GET ""), ``recall`` (POST /recall) and ``items`` (GET,
    PATCH and DELETE of ``/{<noun>_id}``). ``dep`` is the dependency that answers the
    kind's memory; the callables take it first, as its unbound methods do
    (``SemanticMemory.get``)."""

    router: APIRouter
    noun: str  # "entity": names the endpoints (create_entity), the id and the 404
    dep: Any
    model: type[BaseModel]

    def _params(self, *own: tuple[str, Any]) -> list[tuple[str, Any]]:
        return [*own, ("memory", self.dep), ("session", SessionDep)]

    def create(
        self, body: type[BaseModel], create: Callable[[Any, str, Any], Awaitable[Any]]
    ) -> None:
        async def run(memory: Any, session: str, body: Any) -> Any:
            return await create(memory, session, body)

        endpoint = _endpoint(f"create_{self.noun}", self._params(("body", body)), run)
        self.router.post("", status_code=201, response_model=self.model)(endpoint)

    def pages(
        self,
        plural: str,
        page: type[Page[Any]],
        listing: Callable[..., Awaitable[Listing[Any]]],
    ) -> None:
        """GET "": one page of the kind's memories; ``listing`` is the dependency that reads
        the kind's filters and the page from the query."""

        async def run(memory: Any, session: str, listing: Listing[Any]) -> Any:
            got = await memory.list_page(session, listing.filter, listing.limit, listing.cursor)
            return page(items=list(got.items), next_cursor=got.next_cursor)

        # The memory and the session first, as every route resolves them.
        params = [*self._params(), ("listing", Annotated[Listing[Any], Depends(listing)])]
        self.router.get("", response_model=page)(_endpoint(f"list_{plural}", params, run))

    def recall(
        self,
        plural: str,
        body: type[BaseModel],
        result: type[BaseModel],
        recall: Callable[[Any, str, Any], Awaitable[Any]],
    ) -> None:
        async def run(memory: Any, session: str, body: Any) -> Any:
            return await recall(memory, session, body)

        endpoint = _endpoint(f"recall_{plural}", self._params(("body", body)), run)
        self.router.post("/recall", response_model=result)(endpoint)

    def items(
        self,
        *,
        get: Callable[[Any, str, UUID], Awaitable[Any]],
        update_body: type[BaseModel],
        update: Callable[[Any, str, UUID, Any], Awaitable[Any]],
        delete: Callable[[Any, str, UUID], Awaitable[bool]],
        refuse: tuple[type[Exception], ...] = (),
    ) -> None:
        """``refuse``: the errors of an update answered with a 422."""
        noun, ident = self.noun, f"{self.noun}_id"
        path, key = f"/{{{ident}}}", (ident, UUID)

        async def read(memory: Any, session: str, **ids: UUID) -> Any:
            return found(await get(memory, session, ids[ident]), noun)

        async def patch(memory: Any, session: str, body: Any, **ids: UUID) -> Any:
            with refused(refuse):
                changed = await update(memory, session, ids[ident], body)
            return found(changed, noun)

        async def remove(memory: Any, session: str, **ids: UUID) -> Response:
            return deleted(await delete(memory, session, ids[ident]), noun)

        router, model = self.router, self.model
        router.get(path, response_model=model)(_endpoint(f"get_{noun}", self._params(key), read))
        params = self._params(key, ("body", update_body))
        router.patch(path, response_model=model)(_endpoint(f"update_{noun}", params, patch))
        router.delete(path, status_code=204, response_class=Response)(
            _endpoint(f"delete_{noun}", self._params(key), remove)
        )
