"""How an operation, described once as a ``Call``, becomes a method of both clients.

``op`` and ``pages`` are descriptors: the function they wrap builds the ``Call``; read on
a resource of the sync client they give a method returning the answer, on one of the
async client a method returning an awaitable (``pages``: an iterator, an async iterator).
The resource's type parameter (``Sync`` or ``Async``) tells mypy which.
"""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Concatenate, Generic, ParamSpec, TypeVar, overload

from pydantic import BaseModel

from ww.sdk._core import (
    IO,
    Call,
    Retries,
    SyncIO,
    complete,
    iterate,
    json_body,
    new_idempotency_key,
    no_content,
    parse_as,
    perform,
    walk,
)

__all__ = [
    "Async",
    "Body",
    "Resource",
    "Runner",
    "Sync",
    "create",
    "delete",
    "get",
    "op",
    "page",
    "pages",
    "patch",
]

P = ParamSpec("P")
T = TypeVar("T")
I = TypeVar("I")  # noqa: E741 (an item of a page)
Pg = TypeVar("Pg")
M = TypeVar("M")

# A request body: the server's own model, a mapping, or None (keyword fields only).
Body = BaseModel | Mapping[str, Any] | None


class Sync:
    """Marks the resources of ``WorldWeaver``: their methods answer at once."""


class Async:
    """Marks the resources of ``AsyncWorldWeaver``: their methods are awaited."""


@dataclass(frozen=True, slots=True)
class Runner:
    """Where a resource's calls go: the I/O, the headers added per call (the session of a
    ``client.session(...)`` scope) and the retry rules."""

    io: IO
    # Out of the repr: the credentials travel in them (a traceback's locals).
    headers: Mapping[str, str] = field(repr=False)
    retries: Retries

    def run(self, call: Call[T]) -> Any:
        answer = perform(self.io, call, self.headers, self.retries)
        return complete(answer) if isinstance(self.io, SyncIO) else answer

    def walk(self, first: Call[Any], items: Callable[[Any], Sequence[T]]) -> Any:
        found = walk(self.io, first, items, self.headers, self.retries)
        return iterate(found) if isinstance(self.io, SyncIO) else found


class Resource(Generic[M]):
    """A group of operations (``client.episodes``); ``M`` is ``Sync`` or ``Async``."""

    def __init__(self, runner: Runner) -> None:
        self._runner = runner


class op(Generic[P, T]):
    def __init__(self, build: Callable[Concatenate[Any, P], Call[T]]) -> None:
        self.build = build
        self.__doc__ = build.__doc__

    @overload
    def __get__(self, obj: None, owner: type[Any]) -> op[P, T]: ...
    @overload
    def __get__(self, obj: Resource[Sync], owner: type[Any]) -> Callable[P, T]: ...
    @overload
    def __get__(self, obj: Resource[Async], owner: type[Any]) -> Callable[P, Awaitable[T]]: ...
    def __get__(self, obj: Resource[Any] | None, owner: type[Any]) -> Any:
        if obj is None:
            return self
        build, runner = self.build, obj._runner

        @functools.wraps(build)
        def method(*args: P.args, **kwargs: P.kwargs) -> Any:
            return runner.run(build(obj, *args, **kwargs))

        return method


class pages(Generic[P, I]):
    """Every item of a list operation, page after page (``next_cursor``)."""

    def __init__(self, source: op[P, Pg], items: Callable[[Pg], Sequence[I]]) -> None:
        self.build, self.items = source.build, items

    @overload
    def __get__(self, obj: None, owner: type[Any]) -> pages[P, I]: ...
    @overload
    def __get__(self, obj: Resource[Sync], owner: type[Any]) -> Callable[P, Iterator[I]]: ...
    @overload
    def __get__(self, obj: Resource[Async], owner: type[Any]) -> Callable[P, AsyncIterator[I]]: ...
    def __get__(self, obj: Resource[Any] | None, owner: type[Any]) -> Any:
        if obj is None:
            return self
        build, items, runner = self.build, self.items, obj._runner

        def method(*args: P.args, **kwargs: P.kwargs) -> Any:
            return runner.walk(build(obj, *args, **kwargs), items)

        return method


# The calls most operations are made of.


def create(
    path: str,
    answer: type[T],
    body: Body,
    fields: Mapping[str, Any],
    idempotency_key: str | None,
) -> Call[T]:
    """A POST that creates or records something, with an ``Idempotency-Key`` (a new one
    per call unless given): a retry after a lost answer is then done once, not twice."""
    key = idempotency_key or new_idempotency_key()
    return Call(
        "POST",
        path,
        parse_as(answer),
        json=json_body(body, fields),
        headers={"Idempotency-Key": key},
    )


def get(path: str, answer: type[T], params: Mapping[str, Any] | None = None) -> Call[T]:
    return Call("GET", path, parse_as(answer), params=params)


def page(
    path: str, answer: type[T], limit: int, cursor: str | int | None, filters: Mapping[str, Any]
) -> Call[T]:
    """One page of a list; the filters left None are not sent."""
    return get(path, answer, {"limit": limit, "cursor": cursor, **filters})


def patch(path: str, answer: type[T], body: Body, fields: Mapping[str, Any]) -> Call[T]:
    return Call("PATCH", path, parse_as(answer), json=json_body(body, fields))


def delete(path: str) -> Call[None]:
    return Call("DELETE", path, no_content)
