"""``WorldWeaver`` and ``AsyncWorldWeaver``: one surface of operations (``_Surface``), two
kinds of I/O under it (``ww.sdk._core``)."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractAsyncContextManager, AsyncExitStack, contextmanager
from dataclasses import replace
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Generic, Self, TypedDict, TypeVar, Unpack
from uuid import UUID

import httpx

from ww import __version__
from ww.models.api import FeedbackResponse, HealthReport, LinkList
from ww.models.consolidation import ConsolidationReport
from ww.models.unified import UnifiedRecallResult
from ww.sdk._core import AsyncIO, Call, Retries, SyncIO, parse_as
from ww.sdk._ops import Async, Body, Resource, Runner, Sync, create, get, op
from ww.sdk.control import Control
from ww.sdk.errors import APIConnectionError, APITimeoutError, error_for
from ww.sdk.resources import Admin, Entities, Episodes, Sessions, Skills

if TYPE_CHECKING:
    from fastapi import FastAPI

    from ww.config import Settings

__all__ = ["DEFAULT_URL", "AsyncWorldWeaver", "Options", "WorldWeaver"]

M = TypeVar("M")

DEFAULT_URL = "http://127.0.0.1:8765"
# The base URL of an embedded client: requests never leave the process.
EMBEDDED_URL = "http://embedded.ww"


_CREDENTIALS = ("X-API-Key", "X-Admin-Key", "Authorization")


DEFAULT_TIMEOUT = 30.0


class Options(TypedDict, total=False):
    """What both clients take besides where to send (``WorldWeaver`` documents each)."""

    api_key: str | None
    admin_key: str | None
    token: str | None
    session_id: str | None
    timeout: float | httpx.Timeout
    retries: Retries | int
    headers: Mapping[str, str] | None


def _credentials(api_key: str | None, admin_key: str | None, token: str | None) -> dict[str, str]:
    given = (api_key, admin_key, f"Bearer {token}" if token else None)
    return {name: value for name, value in zip(_CREDENTIALS, given, strict=True) if value}


def _runner(io: SyncIO | AsyncIO, options: Options) -> Runner:
    """The runner of a new client; the credentials and the session travel per call (not as
    the pool's headers), so that a view (``session``, ``with_credentials``) can replace them."""
    extra = options.get("headers") or {}
    io.http.headers.update({"User-Agent": f"world-weaver-python/{__version__}", **extra})
    per_call = _credentials(options.get("api_key"), options.get("admin_key"), options.get("token"))
    if session_id := options.get("session_id"):
        per_call["X-Session-ID"] = session_id
    retries = options.get("retries", 2)
    rules = Retries(max_retries=retries) if isinstance(retries, int) else retries
    return Runner(io, per_call, rules)


class _Surface(Resource[M], Generic[M]):
    """Every operation, for either kind of client."""

    def __init__(self, runner: Runner, close: Callable[[], Any] | None) -> None:
        super().__init__(runner)
        # None for a scoped view (client.session): the client it came from owns the I/O.
        self._close = close
        self.episodes: Episodes[M] = Episodes(runner)
        self.entities: Entities[M] = Entities(runner)
        self.skills: Skills[M] = Skills(runner)
        self.sessions: Sessions[M] = Sessions(runner)
        self.admin: Admin[M] = Admin(runner)
        self.control: Control[M] = Control(runner)

    @classmethod
    def embedded(
        cls,
        data_dir: str | Path | None = None,
        *,
        settings: Settings | None = None,
        app: FastAPI | None = None,
        **options: Unpack[Options],
    ) -> Self:
        """The same client on an engine in this process: the server's own application
        (routes, validation, auth, errors) called through ``httpx.ASGITransport`` instead of
        a network, its stores under ``data_dir`` (default: ``WW_DATA_DIR``), or ``app``.
        Needs the server install (``world-weaver[api]``). Closing the client stops the
        engine; an ``AsyncWorldWeaver`` starts it in ``async with`` (or ``await open()``)."""
        try:
            from ww.sdk.embedded import build_app
        except ModuleNotFoundError as exc:
            raise ImportError(
                f"embedded needs the server's dependencies ({exc.name} is not installed): "
                'pip install "world-weaver[api]"'
            ) from exc
        return cls._on_app(build_app(data_dir, settings, app), options)

    @classmethod
    def _on_app(cls, app: FastAPI, options: Options) -> Self:
        raise NotImplementedError

    @property
    def session_id(self) -> str | None:
        """The session this client's calls act in (None: the server's ``WW_SESSION_ID``)."""
        return self._runner.headers.get("X-Session-ID")

    def session(self, session_id: str) -> Self:
        """This client acting in ``session_id``: same connection pool, its own
        ``X-Session-ID``. A context manager; leaving it closes nothing."""
        return self._view({**self._runner.headers, "X-Session-ID": session_id})

    def with_credentials(
        self,
        *,
        api_key: str | None = None,
        admin_key: str | None = None,
        token: str | None = None,
    ) -> Self:
        """This client with other credentials (in place of all of its own) on the same
        connection pool and session; leaving it, as a context manager, closes nothing."""
        kept = {k: v for k, v in self._runner.headers.items() if k not in _CREDENTIALS}
        return self._view({**kept, **_credentials(api_key, admin_key, token)})

    def _view(self, headers: dict[str, str]) -> Self:
        view = object.__new__(type(self))
        _Surface.__init__(view, replace(self._runner, headers=headers), None)
        return view

    @op
    def recall(
        self, query: str, /, *, idempotency_key: str | None = None, **options: Any
    ) -> Call[UnifiedRecallResult]:
        """Episodes, entities and skills for one query, ranked together (``memory_types``,
        ``limits``, ``preset``, ``learn``, ``filters``, ``at``, ``min_relevance``...:
        ``UnifiedRecallRequest``); every hit carries its calibrated ``relevance``."""
        fields = {"query": query, **options}
        return create("/api/v1/recall", UnifiedRecallResult, None, fields, idempotency_key)

    @op
    def feedback(
        self,
        recall_id: UUID | str,
        /,
        *,
        reward: float | None = None,
        rewards: Mapping[UUID | str, float] | None = None,
        idempotency_key: str | None = None,
    ) -> Call[FeedbackResponse]:
        """Reward what a recall (made with ``learn``) returned: one ``reward`` for all, or
        ``rewards`` per memory id."""
        fields = {"recall_id": recall_id, "reward": reward, "rewards": rewards}
        return create("/api/v1/feedback", FeedbackResponse, None, fields, idempotency_key)

    @op
    def consolidate(self, body: Body = None, /, **options: Any) -> Call[ConsolidationReport]:
        """Consolidate the session (``dry_run``, ``min_cluster_size``...)."""
        return create("/api/v1/consolidate", ConsolidationReport, body, options, None)

    @op
    def links(self, memory_id: UUID | str, /) -> Call[LinkList]:
        return get(f"/api/v1/consolidate/links/{memory_id}", LinkList)

    @op
    def health(self) -> Call[HealthReport]:
        """The server's health; a failing component answers 503 with the same report, so
        this returns it rather than raising."""
        return Call("GET", "/api/v1/health", parse_as(HealthReport), accept=frozenset({503}))


class WorldWeaver(_Surface[Sync]):
    """The blocking client.

    ``base_url``: the server (default ``http://127.0.0.1:8765``). Credentials: ``api_key``
    (``X-API-Key``), ``admin_key`` (``X-Admin-Key``) or ``token`` (an admin JWT, sent as
    ``Authorization: Bearer``). ``session_id``: the default ``X-Session-ID`` of every call
    (``client.session(...)`` scopes another). ``retries``: a count or a ``Retries``.
    ``transport``: an ``httpx`` transport in place of the network (tests, proxies).
    """

    def __init__(
        self,
        base_url: str = DEFAULT_URL,
        *,
        transport: httpx.BaseTransport | None = None,
        http_client: httpx.Client | None = None,
        **options: Unpack[Options],
    ) -> None:
        timeout = options.get("timeout", DEFAULT_TIMEOUT)
        http = http_client or httpx.Client(base_url=base_url, timeout=timeout, transport=transport)
        super().__init__(_runner(SyncIO(http), options), http.close)

    @classmethod
    def _on_app(cls, app: FastAPI, options: Options) -> Self:
        from ww.sdk.embedded import AppTransport

        return cls(EMBEDDED_URL, transport=AppTransport(app), **options)

    @contextmanager
    def stream(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
    ) -> Iterator[httpx.Response]:
        """The answer to one request, read as it arrives (``response.iter_bytes()``): an
        export larger than memory, or a route this SDK has no method for yet. This client's
        credentials and session go with it; an error status raises its error, as every other
        call does. Not retried: a stream broken half way cannot be resumed."""
        assert isinstance(self._runner.io, SyncIO)
        http = self._runner.io.http
        kept = {k: v for k, v in (params or {}).items() if v is not None}
        request = http.build_request(
            method, path, params=kept, json=json, headers=self._runner.headers
        )
        try:
            response = http.send(request, stream=True)
        except httpx.TransportError as exc:
            cls = APITimeoutError if isinstance(exc, httpx.TimeoutException) else APIConnectionError
            raise cls(f"{method} {path}: {type(exc).__name__}") from exc
        try:
            if response.is_error:
                response.read()
                raise error_for(response)
            yield response
        finally:
            response.close()

    def close(self) -> None:
        if self._close is not None:
            self._close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class AsyncWorldWeaver(_Surface[Async]):
    """The asyncio client: the options and methods of ``WorldWeaver``, each awaited."""

    # A view (session, with_credentials) has none of its own: it starts and closes nothing.
    _lifespan: AbstractAsyncContextManager[Any] | None = None

    def __init__(
        self,
        base_url: str = DEFAULT_URL,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        http_client: httpx.AsyncClient | None = None,
        lifespan: AbstractAsyncContextManager[Any] | None = None,
        **options: Unpack[Options],
    ) -> None:
        timeout = options.get("timeout", DEFAULT_TIMEOUT)
        http = http_client or httpx.AsyncClient(
            base_url=base_url, timeout=timeout, transport=transport
        )
        self._stack = AsyncExitStack()
        self._lifespan = lifespan
        self._http = http
        super().__init__(_runner(AsyncIO(http), options), self._stack.aclose)

    @classmethod
    def _on_app(cls, app: FastAPI, options: Options) -> Self:
        from ww.sdk.embedded import asgi_transport, lifespan

        return cls(EMBEDDED_URL, transport=asgi_transport(app), lifespan=lifespan(app), **options)

    async def open(self) -> Self:
        """Start what the client needs before its first call (an embedded engine)."""
        if self._lifespan is not None:
            lifespan, self._lifespan = self._lifespan, None
            await self._stack.enter_async_context(lifespan)
        return self

    async def aclose(self) -> None:
        if self._close is not None:
            await self._http.aclose()
            await self._close()

    async def __aenter__(self) -> Self:
        return await self.open()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    def __enter__(self) -> Self:
        # ``with client.session("p") as s`` inside async code: the view owns nothing.
        return self

    def __exit__(self, *exc: object) -> None:
        return None
