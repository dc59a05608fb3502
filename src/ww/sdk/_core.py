"""The one request layer under both clients.

An operation is described once, as a ``Call`` (method, path, query, body, how to read the
answer). ``perform`` is the whole protocol around it (send, read the answer or the error,
decide whether and how long to wait before a retry) and ``walk`` follows a list's cursors;
both are written once, as coroutines over an ``IO``. ``AsyncIO`` awaits
``httpx.AsyncClient``; ``SyncIO`` calls ``httpx.Client`` and ``time.sleep`` inside
coroutines that therefore never suspend, which ``complete`` and ``iterate`` run to the end
without an event loop. So the sync client is the async one with blocking I/O, not a copy.
"""

from __future__ import annotations

import asyncio
import functools
import random
import time
import uuid
from collections.abc import (
    AsyncIterator,
    Callable,
    Coroutine,
    Iterable,
    Iterator,
    Mapping,
    Sequence,
)
from dataclasses import dataclass, field, replace
from typing import Any, Generic, TypeVar

import httpx
from pydantic import BaseModel, TypeAdapter

from ww.sdk.errors import APIConnectionError, APIStatusError, APITimeoutError, error_for

__all__ = [
    "IO",
    "AsyncIO",
    "Call",
    "Retries",
    "SyncIO",
    "adapter_for",
    "complete",
    "iterate",
    "json_body",
    "jsonable",
    "new_idempotency_key",
    "no_content",
    "parse_as",
    "perform",
    "walk",
]

T = TypeVar("T")

# Methods that do the same thing however often they are sent (RFC 9110 9.2.2).
_IDEMPOTENT = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})


def new_idempotency_key() -> str:
    return str(uuid.uuid4())


# Building an adapter costs a schema build: one for ``Any``, and one per answer type
# (the types a client reads are few), not one per call.
_ANY: TypeAdapter[Any] = TypeAdapter(Any)


@functools.lru_cache(maxsize=256)
def _cached_adapter(kind: Any) -> TypeAdapter[Any]:
    return TypeAdapter(kind)


def adapter_for(kind: type[T]) -> TypeAdapter[T]:
    """The pydantic adapter of ``kind``, built once per type (built each time for a type
    that cannot be hashed, such as ``Annotated`` with a dict in its metadata)."""
    try:
        hash(kind)
    except TypeError:
        return TypeAdapter(kind)
    key: Any = kind  # hashable, as just seen
    return _cached_adapter(key)


def parse_as(kind: type[T]) -> Callable[[httpx.Response], T]:
    """Read an answer's JSON as ``kind`` with pydantic (a model or any type it knows)."""
    adapter = adapter_for(kind)
    return lambda response: adapter.validate_json(response.content)


def no_content(_: httpx.Response) -> None:
    return None


def json_body(body: BaseModel | Mapping[str, Any] | None, fields: Mapping[str, Any]) -> Any:
    """The JSON of a request body given as the server's model, a mapping, keyword fields or
    a mix (fields win). Not validated here: the server is the one judge, and answers a
    bad body with a 422 the caller can read."""
    if isinstance(body, BaseModel):
        data: dict[str, Any] = body.model_dump(mode="json", exclude_unset=True)
    else:
        data = dict(body or {})
    data.update(fields)
    return jsonable(data)


def jsonable(value: Any) -> Any:
    """Models (and lists of them), UUIDs, datetimes and enums, nested or not, as JSON
    values (the server's own shape)."""
    return _ANY.dump_python(value, mode="json")


@dataclass(frozen=True, slots=True)
class Call(Generic[T]):
    """One operation: what to send and how to read the answer.

    ``accept``: error statuses whose body is an answer, not an error (health's 503).
    ``repeatable``: the server does it once however often it is sent (idempotent methods,
    an ``Idempotency-Key``, an upsert), so a 503 or a lost connection may be retried.
    """

    method: str
    path: str
    parse: Callable[[httpx.Response], T]
    params: Mapping[str, Any] | None = None
    json: Any = None
    # Bytes, or an iterable of chunks that can be iterated again (not a generator: a retry
    # sends it again).
    content: bytes | Iterable[bytes] | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    accept: frozenset[int] = frozenset()
    upsert: bool = False

    @property
    def repeatable(self) -> bool:
        return self.method in _IDEMPOTENT or self.upsert or "Idempotency-Key" in self.headers

    def with_cursor(self, cursor: str | int) -> Call[T]:
        return replace(self, params={**(self.params or {}), "cursor": cursor})

    def build(self, http: httpx.Client | httpx.AsyncClient, extra: Mapping[str, str]) -> Any:
        params = {k: v for k, v in (self.params or {}).items() if v is not None}
        return http.build_request(
            self.method,
            self.path,
            params=jsonable(params),
            json=self.json,
            content=self.content,
            headers={**extra, **self.headers},
        )


@dataclass(frozen=True, slots=True)
class Retries:
    """Retries of a 429, and of a 503 or a lost connection when the call is repeatable.

    The wait is the server's ``Retry-After`` when it gives one, else ``backoff`` doubled
    each attempt (with jitter, so many clients do not come back at once) up to
    ``max_backoff``. A ``Retry-After`` longer than ``max_retry_after`` is not waited for:
    the error is raised at once, with ``retry_after`` on it."""

    max_retries: int = 2
    backoff: float = 0.5
    max_backoff: float = 8.0
    max_retry_after: float = 60.0

    def delay(self, attempt: int, retry_after: float | None) -> float | None:
        if attempt >= self.max_retries:
            return None
        if retry_after is not None:
            return retry_after if retry_after <= self.max_retry_after else None
        ceiling = min(self.max_backoff, self.backoff * 2**attempt)
        return random.uniform(ceiling / 2, ceiling)


Outcome = httpx.Response | httpx.TransportError


class SyncIO:
    """Blocking I/O behind the async protocol: its coroutines never suspend, so
    ``complete`` runs them to the end in the caller's thread, with no event loop."""

    def __init__(self, http: httpx.Client) -> None:
        self.http = http

    async def send(self, request: httpx.Request) -> httpx.Response:
        return self.http.send(request)

    async def sleep(self, seconds: float) -> None:
        time.sleep(seconds)  # noqa: ASYNC251 (never awaited on an event loop)


class AsyncIO:
    def __init__(self, http: httpx.AsyncClient) -> None:
        self.http = http

    async def send(self, request: httpx.Request) -> httpx.Response:
        return await self.http.send(request)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


IO = SyncIO | AsyncIO


def complete(step: Coroutine[Any, Any, T]) -> T:
    """The result of a coroutine over ``SyncIO``, run to its end without a loop."""
    try:
        step.send(None)
    except StopIteration as done:
        result: T = done.value
        return result
    step.close()
    raise RuntimeError("a SyncIO coroutine suspended: it awaited something asynchronous")


def iterate(items: AsyncIterator[T]) -> Iterator[T]:
    """The items of an async iterator over ``SyncIO``, as a plain iterator."""
    while True:
        try:
            item = complete(_next(items))
        except StopAsyncIteration:
            return
        yield item


async def _next(items: AsyncIterator[T]) -> T:
    return await anext(items)


# The error codes of ww.api.control_gate's refusals.
OPERATOR_BLOCKS = frozenset({"read_only", "maintenance", "emergency_limited", "emergency_lockdown"})


def _failure(call: Call[Any], outcome: Outcome) -> tuple[Exception, bool, float | None]:
    """The error an outcome stands for, whether it may be retried, and the server's wait."""
    if isinstance(outcome, httpx.Response):
        error: APIStatusError = error_for(outcome)
        status = outcome.status_code
        # A 503 the control plane answers (read-only, maintenance, an emergency level) is an
        # operator's decision that lasts until lifted, not a fault a retry outlasts.
        blocked = error.code in OPERATOR_BLOCKS
        retryable = status == 429 or (status == 503 and call.repeatable and not blocked)
        return error, retryable, error.retry_after
    timeout = isinstance(outcome, httpx.TimeoutException)
    cls = APITimeoutError if timeout else APIConnectionError
    return cls(f"{call.method} {call.path}: {type(outcome).__name__}"), call.repeatable, None


async def perform(io: IO, call: Call[T], extra: Mapping[str, str], retries: Retries) -> T:
    """Send ``call`` until it is answered, retrying as ``retries`` allow; its answer read."""
    request = call.build(io.http, extra)
    attempt = 0
    while True:
        outcome: Outcome
        try:
            outcome = await io.send(request)
        except httpx.TransportError as exc:
            outcome = exc
        if isinstance(outcome, httpx.Response) and (
            outcome.is_success or outcome.status_code in call.accept
        ):
            return call.parse(outcome)
        error, retryable, server_wait = _failure(call, outcome)
        wait = retries.delay(attempt, server_wait) if retryable else None
        if wait is None:
            if isinstance(outcome, httpx.TransportError):
                raise error from outcome
            raise error
        attempt += 1
        await io.sleep(wait)


async def walk(
    io: IO,
    first: Call[Any],
    items: Callable[[Any], Sequence[T]],
    extra: Mapping[str, str],
    retries: Retries,
) -> AsyncIterator[T]:
    """Every item of every page, following ``next_cursor`` from ``first``."""
    call: Call[Any] | None = first
    while call is not None:
        page = await perform(io, call, extra, retries)
        for item in items(page):
            yield item
        call = first.with_cursor(page.next_cursor) if page.next_cursor else None
