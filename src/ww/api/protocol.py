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
"""

from __future__ import annotations

import asyncio
import functools
import json
from typing import Any, cast

from starlette.types import Receive, Scope, Send
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

__all__ = ["GuardedHttpProtocol", "protocol_factory"]


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
        self._arm()

    def on_headers_complete(self) -> None:
        self._disarm()
        if len(self.connections) <= self.max_connections:
            super().on_headers_complete()
            return
        app, self.app = self.app, _busy
        try:
            super().on_headers_complete()
        finally:
            self.app = app


def protocol_factory(request_timeout: float, max_connections: int) -> type[asyncio.Protocol]:
    """What ``uvicorn.Config(http=...)`` takes: a picklable partial of the protocol class,
    since the multi-worker supervisor sends its config to each worker process."""
    factory = functools.partial(
        GuardedHttpProtocol, request_timeout=request_timeout, max_connections=max_connections
    )
    return cast(type[asyncio.Protocol], factory)
