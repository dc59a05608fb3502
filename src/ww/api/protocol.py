"""uvicorn's HTTP protocol with a header deadline and a connection cap.

uvicorn closes a kept-alive connection that stays idle, but nothing else: a client that
opens a connection and sends nothing, or half of its headers, holds it for ever. Here the
headers of each request must be complete within ``request_timeout`` seconds of the
connection opening or of the request's first byte, else the connection is closed. (Bodies
are timed by ``ww.api.limits.BodyGuardMiddleware``, which can still answer 408.)

A request arriving while this process has more than ``max_connections`` connections open
gets 503 in the error envelope, and its connection is closed. uvicorn's own
``limit_concurrency`` answers in plain text and counts the refused connection among the
allowed ones; this counts only the others.

A graceful stop (SIGTERM, or the old worker of a rolling restart, ``docs/operations.md``)
does not reset a request the client has already sent: uvicorn closes at once every
connection with no request under way, but a fresh connection's request may sit unread in
the socket's buffer at that moment. Such a connection gets ``SHUTDOWN_GRACE_S`` to start
one, which is served and answered with ``Connection: close``.
"""

from __future__ import annotations

import asyncio
import functools
import json
from typing import Any, cast

from starlette.types import Receive, Scope, Send
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

__all__ = ["SHUTDOWN_GRACE_S", "GuardedHttpProtocol", "protocol_factory"]

# Long enough for a request already on its way over loopback or a LAN to be read; a stop
# waits this long at most for a connection that sends nothing.
SHUTDOWN_GRACE_S = 1.0


async def _busy(scope: Scope, receive: Receive, send: Send) -> None:
    """503 in the one error envelope (``ww.api.errors``), without the app: none is needed."""
    body = json.dumps(
        {
            "error": {
                "code": "service_unavailable",
                "message": "too many open connections; retry shortly",
                "request_id": None,
            }
        }
    ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 503,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"retry-after", b"1"),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class GuardedHttpProtocol(HttpToolsProtocol):
    """``HttpToolsProtocol`` with a header deadline and a connection cap (module doc)."""

    def __init__(self, *args: Any, request_timeout: float, max_connections: int, **kw: Any):
        super().__init__(*args, **kw)
        self.request_timeout = request_timeout
        self.max_connections = max_connections
        self._header_deadline: asyncio.TimerHandle | None = None
        self._stopping = False
        self._receiving = False  # a request's headers have begun and are not complete

    def _arm(self) -> None:
        if self._header_deadline is None:
            self._header_deadline = self.loop.call_later(self.request_timeout, self._expire)

    def _disarm(self) -> None:
        if self._header_deadline is not None:
            self._header_deadline.cancel()
            self._header_deadline = None

    def _expire(self) -> None:
        self._header_deadline = None
        if not self.transport.is_closing():
            self.transport.close()

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._receiving = True
        self._arm()

    def on_headers_complete(self) -> None:
        self._disarm()
        self._receiving = False
        if len(self.connections) <= self.max_connections:
            super().on_headers_complete()
        else:
            app, self.app = self.app, _busy
            try:
                super().on_headers_complete()
            finally:
                self.app = app
        if self._stopping and self.cycle is not None:
            self.cycle.keep_alive = False  # the last request of a stopping worker

    def shutdown(self) -> None:
        """uvicorn's graceful stop of this connection (module doc)."""
        self._stopping = True
        if self.cycle is not None and not self.cycle.response_complete:
            self.cycle.keep_alive = False  # the request under way finishes, then it closes
            return
        self.loop.call_later(min(SHUTDOWN_GRACE_S, self.request_timeout), self._close_if_idle)

    def _close_if_idle(self) -> None:
        if self._receiving or self.transport.is_closing():
            return  # a request has begun: it ends the connection (or the header deadline does)
        if self.cycle is None or self.cycle.response_complete:
            self.transport.close()


def protocol_factory(request_timeout: float, max_connections: int) -> type[asyncio.Protocol]:
    """What ``uvicorn.Config(http=...)`` takes: a picklable partial of the protocol class,
    since the multi-worker supervisor sends its config to each worker process."""
    factory = functools.partial(
        GuardedHttpProtocol, request_timeout=request_timeout, max_connections=max_connections
    )
    return cast(type[asyncio.Protocol], factory)
