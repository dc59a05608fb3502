"""Rate limiting: ``WW_RATE_LIMIT`` requests per caller and route group, with the ``limits``
library's moving window.

The caller is the API key's id (``request.state.principal``, set by ``AuthMiddleware``
outside this one; never the key), or the client address when auth is off. The route group is
the first path segment after ``/api/v1`` (``episodes``, ``entities``, ``skills``, ...), so a
caller that floods recall still gets its writes through. ``/``, health and the docs are
never limited.

Counts live in each worker's memory (``WW_RATE_LIMITER_BACKEND=memory``: every worker
allows the full limit) or in Redis (``redis``: one count shared by every worker and host).
While Redis cannot be reached, ``WW_RATE_LIMIT_REDIS_DOWN`` decides: ``open`` serves
unlimited, ``closed`` answers 503; one warning is logged per outage, and Redis is tried
again every ``WW_REDIS_RETRY_S`` seconds, so limiting resumes by itself when it returns.

Every limited answer carries ``X-RateLimit-Limit``, ``X-RateLimit-Remaining`` (after this
request) and ``X-RateLimit-Reset`` (when the oldest counted request leaves the window, in
epoch seconds, as GitHub's API gives it); a 429 adds ``Retry-After`` (seconds).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from limits import RateLimitItem, parse
from limits.aio.storage import MemoryStorage, RedisStorage, Storage
from limits.aio.strategies import MovingWindowRateLimiter
from limits.errors import StorageError
from redis.asyncio import ConnectionPool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ww.api.auth import _ERROR_REF, is_exempt
from ww.api.errors import error_response
from ww.api.metrics import RATE_LIMITED
from ww.config import RedisDownPolicy, Settings
from ww.secrets import url_address

__all__ = [
    "API_PREFIX",
    "Circuit",
    "CircuitGate",
    "Decision",
    "HealthGate",
    "RateLimitMiddleware",
    "RateLimiter",
    "RedisHealth",
    "build_rate_limiter",
    "document_rate_limits",
    "per_worker_warning",
    "route_group",
    "route_groups",
]

log = logging.getLogger(__name__)

API_PREFIX = "/api/v1/"
# Where every other path's requests are counted (an unknown /api/v1/<x> included, so a
# caller cannot mint a fresh budget per made-up path).
OTHER_GROUP = "other"
# Redis keys start with this, apart from anything else in a shared Redis.
KEY_PREFIX = "ww-ratelimit"


def route_groups(paths: Iterable[str]) -> frozenset[str]:
    """The groups of an app's route paths: each first segment after ``/api/v1/``."""
    return frozenset(
        p[len(API_PREFIX) :].split("/", 1)[0]
        for p in paths
        if p.startswith(API_PREFIX) and not is_exempt(p)
    )


def route_group(path: str, groups: frozenset[str]) -> str | None:
    """The group ``path`` is counted in, None for a path that is never limited (the exempt
    routes and the docs' assets, ``ww.api.auth.is_exempt``)."""
    if is_exempt(path):
        return None
    if path.startswith(API_PREFIX):
        first = path[len(API_PREFIX) :].split("/", 1)[0]
        if first in groups:
            return first
    return OTHER_GROUP


class HealthGate(Protocol):
    """Whether to ask Redis now, and what each try taught: ``RedisHealth`` or, once wired,
    the control plane's ``redis`` circuit breaker. ``admit`` is None to skip Redis, else a
    token: a call that ends neither in success nor failure (cancelled) hands it to
    ``release``, which frees a half-open trial that call holds."""

    def admit(self) -> int | None: ...

    def release(self, token: int) -> None: ...

    def on_success(self) -> None: ...

    def on_failure(self, exc: BaseException) -> None: ...


class RedisHealth:
    """Redis's reachability as the limiter sees it: a failure marks it down (one warning),
    requests then skip Redis until ``retry_s`` has passed, when one request tries it again;
    a success marks it up. ``listeners`` are called with the new state on each change."""

    def __init__(
        self, address: str, retry_s: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.address = address
        self.retry_s = retry_s
        self.clock = clock
        self.available = True
        self._next_try = 0.0
        self.listeners: list[Callable[[bool], None]] = []

    def allow(self) -> bool:
        if self.available:
            return True
        now = self.clock()
        if now < self._next_try:
            return False
        # This request tries; the others keep the policy until it has answered or the
        # interval passes again.
        self._next_try = now + self.retry_s
        return True

    def admit(self) -> int | None:
        return 0 if self.allow() else None

    def release(self, token: int) -> None:
        """Nothing held: a cancelled try only moves the next one ``retry_s`` on."""

    def on_success(self) -> None:
        if not self.available:
            self.available = True
            log.warning("rate limiter: Redis at %s is reachable again", self.address)
            self._notify()

    def on_failure(self, exc: BaseException) -> None:
        self._next_try = self.clock() + self.retry_s
        if self.available:
            self.available = False
            # The exception's class only: a message could quote the URL.
            log.warning(
                "rate limiter: Redis at %s cannot be reached (%s); trying again every %g s",
                self.address,
                type(exc).__name__,
                self.retry_s,
            )
            self._notify()

    def _notify(self) -> None:
        for listener in self.listeners:
            listener(self.available)


class Circuit(Protocol):
    """What the limiter uses of a circuit breaker (``ww.control.circuits.Breaker``)."""

    def admit(self) -> int | None: ...

    def release(self, token: int) -> None: ...

    def record_success(self) -> None: ...

    def record_failure(self) -> None: ...


@dataclass(frozen=True)
class CircuitGate:
    """The ``redis`` circuit breaker as the limiter's gate: the breaker decides when Redis
    is asked (open: the policy at once; half-open: one request tries), so its state is what
    ``/api/v1/control/circuits`` and health show, and an operator's reset tries Redis on the
    next request; ``log`` keeps one warning per outage."""

    circuit: Circuit
    log: RedisHealth

    def admit(self) -> int | None:
        return self.circuit.admit()

    def release(self, token: int) -> None:
        self.circuit.release(token)

    def on_success(self) -> None:
        self.circuit.record_success()
        self.log.on_success()

    def on_failure(self, exc: BaseException) -> None:
        self.circuit.record_failure()
        self.log.on_failure(exc)


@dataclass(frozen=True)
class Decision:
    allowed: bool
    limit: int
    remaining: int
    reset: float  # epoch seconds

    def headers(self) -> dict[str, str]:
        return {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(self.remaining),
            "X-RateLimit-Reset": str(math.ceil(self.reset)),
        }

    def retry_after(self, now: float) -> int:
        return max(1, math.ceil(self.reset - now))


@dataclass
class RateLimiter:
    """One limit over a storage made in the running event loop (``open``, or the first
    request), so each lifespan's loop has its own locks and connections. ``storage`` makes
    it, ``close`` releases what it holds, ``description`` is logged at ``open``."""

    item: RateLimitItem
    storage: Callable[[], Storage]
    health: HealthGate | None = None
    close_storage: Callable[[], Awaitable[None]] | None = None
    description: str = ""
    _strategy: MovingWindowRateLimiter | None = field(default=None, init=False, repr=False)

    def open(self) -> None:
        if self.description:
            log.info("%s", self.description)
        self._strategy = MovingWindowRateLimiter(self.storage())

    async def close(self) -> None:
        self._strategy = None
        if self.close_storage is not None:
            await self.close_storage()

    async def hit(self, *identifiers: str) -> Decision | None:
        """Count one request; None when the storage cannot be reached (the policy decides)."""
        if self._strategy is None:
            self.open()
        assert self._strategy is not None
        token = 0
        if self.health is not None:
            admitted = self.health.admit()
            if admitted is None:
                return None
            token = admitted
        try:
            allowed = await self._strategy.hit(self.item, *identifiers)
            stats = await self._strategy.get_window_stats(self.item, *identifiers)
        except (StorageError, OSError) as exc:
            if self.health is not None:
                self.health.on_failure(exc)
            return None
        except BaseException:
            # Cancelled (the client went away) or a bug: says nothing about Redis, but a
            # half-open trial this request holds must be freed for the next one.
            if self.health is not None:
                self.health.release(token)
            raise
        if self.health is not None:
            self.health.on_success()
        return Decision(allowed, self.item.amount, stats.remaining, stats.reset_time)


def build_rate_limiter(
    settings: Settings, health: HealthGate | None = None, circuit: Circuit | None = None
) -> RateLimiter:
    """The limiter ``settings`` describe. With Redis, ``health`` (default: ``circuit``, the
    process's ``redis`` circuit breaker, when given, else a ``RedisHealth`` retrying every
    ``WW_REDIS_RETRY_S``) decides when Redis is asked and hears each outcome."""
    item = parse(settings.rate_limit)
    url = settings.rate_limiter_redis_url
    if url is None:
        return RateLimiter(item, MemoryStorage, description=_describe(settings))
    # Our own pool: no retries inside redis-py (RedisHealth paces the tries), a timeout on
    # every command, and a pool to close at shutdown.
    pools: list[ConnectionPool] = []

    def redis_storage() -> Storage:
        pool = ConnectionPool.from_url(
            url,
            socket_timeout=settings.redis_timeout_s,
            socket_connect_timeout=settings.redis_timeout_s,
        )
        pools.append(pool)
        return RedisStorage(
            "async+" + url,
            wrap_exceptions=True,
            implementation="redispy",
            key_prefix=KEY_PREFIX,
            connection_pool=pool,  # type: ignore[arg-type]  # passed on to redis-py
        )

    async def close() -> None:
        while pools:
            await pools.pop().aclose()

    own = RedisHealth(url_address(url), settings.redis_retry_s)
    gate = health or (own if circuit is None else CircuitGate(circuit, own))
    return RateLimiter(item, redis_storage, gate, close, _describe(settings))


def _describe(settings: Settings) -> str:
    """The start-up log's account of the limit (Redis by its address only)."""
    url = settings.rate_limiter_redis_url
    where = "this worker's memory" if url is None else f"Redis at {url_address(url)}"
    return (
        f"rate limit {settings.rate_limit} per caller and route group, counted in {where}, "
        f"while flag api_rate_limiting is on"
    )


def per_worker_warning(settings: Settings, enabled: bool) -> str | None:
    """The deployment guide's warning, when it applies: several workers each counting the
    limit in their own memory."""
    if not enabled or settings.api_workers == 1 or settings.rate_limiter_redis_url is not None:
        return None
    return (
        f"WW_RATE_LIMITER_BACKEND=memory with WW_API_WORKERS={settings.api_workers}: each "
        f"worker counts WW_RATE_LIMIT={settings.rate_limit} on its own, so a caller may make "
        f"{settings.api_workers} times as many requests; set WW_RATE_LIMITER_BACKEND=redis "
        "and WW_REDIS_URL for one shared limit"
    )


@dataclass
class RateLimitMiddleware:
    """Counts each request of a known caller before its body is read; answers 429 past the
    limit. ``enabled`` is asked on every request (the ``api_rate_limiting`` flag);
    ``redis_down`` applies while the limiter cannot reach its Redis, whose 503 asks for a
    retry after ``down_retry_s``."""

    app: ASGIApp
    limiter: RateLimiter
    enabled: Callable[[], bool]
    groups: frozenset[str]
    redis_down: RedisDownPolicy = RedisDownPolicy.OPEN
    down_retry_s: float = 1.0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.enabled():
            await self.app(scope, receive, send)
            return
        group = route_group(scope["path"], self.groups)
        if group is None:
            await self.app(scope, receive, send)
            return
        state = scope.get("state", {})
        principal = state.get("principal")
        client = scope.get("client")
        if principal is not None:
            caller = f"key:{principal.id}"
        else:
            caller = f"addr:{client[0] if client else '-'}"
        decision = await self.limiter.hit(group, caller)
        rid = state.get("request_id")
        if decision is None:
            if self.redis_down is RedisDownPolicy.OPEN:
                await self.app(scope, receive, send)
                return
            response = error_response(
                503,
                "service_unavailable",
                "the rate limiter cannot reach Redis and WW_RATE_LIMIT_REDIS_DOWN=closed: "
                "limited routes are refused until it is back",
                rid,
                {"Retry-After": str(max(1, math.ceil(self.down_retry_s)))},
            )
            await response(scope, receive, send)
            return
        headers = decision.headers()
        if not decision.allowed:
            retry_after = decision.retry_after(time.time())
            log.debug("429 %s %s for %s", scope["method"], scope["path"], caller)
            RATE_LIMITED.labels(group).inc()
            response = error_response(
                429,
                "rate_limited",
                f"more than {self.limiter.item.amount} requests per "
                f"{_window(self.limiter.item)} to the {group} routes; retry after "
                f"{retry_after} s",
                rid,
                {**headers, "Retry-After": str(retry_after)},
            )
            await response(scope, receive, send)
            return
        raw = [(k.lower().encode(), v.encode()) for k, v in headers.items()]

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *raw]
            await send(message)

        await self.app(scope, receive, send_with_headers)


def _window(item: RateLimitItem) -> str:
    unit = item.GRANULARITY.name
    return unit if item.multiples == 1 else f"{item.multiples} {unit}s"


def document_rate_limits(schema: dict[str, Any]) -> None:
    """Each limited operation's 429 (the flag may turn limiting on at any time)."""
    for path, ops in schema.get("paths", {}).items():
        if route_group(path, frozenset()) is None:
            continue
        for op in ops.values():
            op.setdefault("responses", {})["429"] = {
                "description": "Too many requests: see Retry-After and X-RateLimit-Reset",
                **_ERROR_REF,
            }
