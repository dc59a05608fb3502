"""Watches every HTTP request: times it, counts it in the metrics by route template and
status (``ww.api.metrics``), and writes its access line (``ww.logs``)."""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from starlette.routing import compile_path
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ww import tracing
from ww.api.metrics import REQUEST_SECONDS, REQUESTS
from ww.config import SESSION_ID_PATTERN
from ww.logs import access_line

if TYPE_CHECKING:
    from opentelemetry.trace import Span

__all__ = [
    "UNMATCHED",
    "RequestObserver",
    "RequestOutcome",
    "RouteTemplates",
    "log_access",
    "session_of",
]

# The route label of a path no route has: one value, whatever the path (no ids in labels).
UNMATCHED = "unmatched"


class RouteTemplates:
    """Finds the template of a path that no route has served: a request refused before
    routing (401, 429, 503) is counted under the route it asked for."""

    def __init__(self, templates: Iterable[tuple[str, Iterable[str]]]) -> None:
        self._compiled = [
            (compile_path(template)[0], template, frozenset(m.upper() for m in methods))
            for template, methods in templates
        ]

    def __call__(self, scope: Scope) -> str:
        route = scope.get("route")
        path = getattr(route, "path", None)
        if isinstance(path, str) and path:
            return path
        found = UNMATCHED
        for regex, template, methods in self._compiled:
            if regex.match(scope["path"]):
                if scope["method"] in methods:
                    return template
                found = template if found == UNMATCHED else found
        return found


class RequestOutcome:
    """What ``RequestObserver`` learnt of one request, handed to its listeners (the
    access log)."""

    __slots__ = ("method", "route", "scope", "seconds", "status")

    def __init__(self, scope: Scope, method: str, route: str, status: int, seconds: float):
        self.scope, self.method, self.route = scope, method, route
        self.status, self.seconds = status, seconds


class RequestObserver:
    """Times every HTTP request and counts it by route template and status, then tells the
    ``listeners``. Sits outside auth, so refused requests are counted too; also keeps this
    worker's gauges current (``gauges``), at most once per ``gauge_interval`` seconds of
    ``clock``: reading every breaker and the embedder costs more than the rest of the
    bookkeeping, and ``/metrics`` refreshes them itself at each scrape."""

    def __init__(
        self,
        app: ASGIApp,
        routes: RouteTemplates,
        gauges: Callable[[], None],
        listeners: Iterable[Callable[[RequestOutcome], None]] = (),
        gauge_interval: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.app, self.routes, self.gauges = app, routes, gauges
        self.listeners = list(listeners)
        self.gauge_interval, self.clock = gauge_interval, clock
        self._gauges_due = -math.inf

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500  # what the client sees if the app raises before answering

        async def send_seen(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        with tracing.span(
            "HTTP " + scope["method"], **{"http.request.method": scope["method"]}
        ) as current:
            try:
                await self.app(scope, receive, send_seen)
            finally:
                self._done(scope, start, status, current)

    def _done(self, scope: Scope, start: float, status: int, current: Span | None) -> None:
        seconds = time.perf_counter() - start
        method, route = scope["method"], self.routes(scope)
        if current is not None:
            current.update_name(f"{method} {route}")
            tracing.set_attributes(
                current,
                **{
                    "http.route": route,
                    "http.response.status_code": status,
                    "ww.request_id": scope.get("state", {}).get("request_id"),
                    "ww.session": session_of(scope),
                },
            )
        REQUESTS.labels(method, route, str(status)).inc()
        REQUEST_SECONDS.labels(method, route, str(status)).observe(seconds)
        now = self.clock()
        if now >= self._gauges_due:
            self._gauges_due = now + self.gauge_interval
            self.gauges()
        outcome = RequestOutcome(scope, method, route, status, seconds)
        for listener in self.listeners:
            listener(outcome)


_SESSION = re.compile(SESSION_ID_PATTERN)


def session_of(scope: Scope) -> str | None:
    """The request's ``X-Session-ID``, if well-formed: the header is the caller's text."""
    session = dict(scope["headers"]).get(b"x-session-id", b"").decode("latin-1")
    return session if _SESSION.match(session) else None


def log_access(outcome: RequestOutcome) -> None:
    state = outcome.scope.get("state", {})
    principal = state.get("principal")
    access_line(
        request_id=state.get("request_id"),
        method=outcome.method,
        route=outcome.route,
        status=outcome.status,
        seconds=outcome.seconds,
        principal=getattr(principal, "id", None),
        session=session_of(outcome.scope),
    )
