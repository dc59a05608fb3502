"""ASGI middleware: request ids (the body's bounds are in ``ww.api.limits``)."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["Headers", "RequestIdMiddleware", "ResponseHeadersMiddleware"]

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")


Headers = list[tuple[bytes, bytes]]


class ResponseHeadersMiddleware:
    """Rewrites the headers of every HTTP response with the function ``rewriter`` gives for
    its request (the base of the middleware that add headers to every answer)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    def rewriter(self, scope: Scope) -> Callable[[Headers], Headers]:
        raise NotImplementedError

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rewrite = self.rewriter(scope)

        async def send_rewritten(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = rewrite(list(message.get("headers", [])))
            await send(message)

        await self.app(scope, receive, send_rewritten)


class RequestIdMiddleware(ResponseHeadersMiddleware):
    """Accept a sane ``X-Request-ID`` or make one; echo it on every response."""

    def rewriter(self, scope: Scope) -> Callable[[Headers], Headers]:
        given = dict(scope["headers"]).get(b"x-request-id", b"").decode("latin-1")
        rid = given if _REQUEST_ID.match(given) else uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = rid

        def with_id(headers: Headers) -> Headers:
            return [(k, v) for k, v in headers if k != b"x-request-id"] + [
                (b"x-request-id", rid.encode())
            ]

        return with_id
