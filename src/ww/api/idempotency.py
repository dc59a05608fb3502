"""``Idempotency-Key``: a write retried with the same key is done once.

Every ``POST`` of a router built with ``route_class=IdempotentRoute`` accepts the header. A
request that carries it first claims the key in the record store (per session); then:

- the key is new: the request runs, and a 2xx answer is stored under the key (any other
  answer, or an exception, gives the key back, so the client can retry it);
- the key holds an answer to the same request (same method, path, query and JSON body):
  that answer is sent again, status and body, with ``Idempotent-Replayed: true``, and
  nothing runs;
- the key holds another request's answer: 422 ``idempotency_key_reused``;
- the key is reserved by a request still in flight: 409 ``idempotency_key_in_progress``.

Answers are kept ``WW_IDEMPOTENCY_TTL_HOURS``; a reservation whose request never finished
(the process died) goes stale after ``IN_PROGRESS_TIMEOUT``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated, Any
from uuid import uuid4

from fastapi import Depends, Header, Request, Response
from fastapi.routing import APIRoute

from ww.api.deps import get_session_id
from ww.api.errors import ApiError, ErrorEnvelope, error_response
from ww.engine.memory import Clock
from ww.storage.ports.idempotency import (
    ClaimState,
    Horizon,
    IdempotencyStore,
    Reservation,
    StoredAnswer,
)

__all__ = [
    "IN_PROGRESS_TIMEOUT",
    "KEY_HEADER",
    "REPLAYED_HEADER",
    "Idempotency",
    "IdempotentRoute",
    "fingerprint",
]

log = logging.getLogger(__name__)

KEY_HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
# Longer than any write takes; a reservation this old belongs to a request that died.
IN_PROGRESS_TIMEOUT = timedelta(minutes=5)

_KEY = re.compile(r"^[\x21-\x7e]{1,255}$")  # visible ASCII: no spaces, no control bytes

Handler = Callable[[Request], Coroutine[Any, Any, Response]]


def fingerprint(method: str, path: str, query: str, body: bytes) -> str:
    """What identifies a request for its key: a JSON body counts by value (key order and
    spacing do not matter), any other body byte for byte."""
    try:
        canonical = json.dumps(
            json.loads(body), sort_keys=True, separators=(",", ":"), ensure_ascii=False
        ).encode()
    except ValueError:  # not JSON (UnicodeDecodeError is a ValueError): the raw bytes
        canonical = body
    digest = hashlib.sha256()
    for part in (method.encode(), path.encode(), query.encode(), canonical):
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return digest.hexdigest()


@dataclass(eq=False)
class Idempotency:
    """The stored answers and how long they count; the app keeps one in its state."""

    store: IdempotencyStore
    ttl: timedelta
    clock: Clock

    async def run(self, request: Request, key: str, handler: Handler) -> Response:
        if not _KEY.match(key):
            raise ApiError(
                400,
                f"{KEY_HEADER} must be 1-255 visible ASCII characters (no spaces)",
                code="invalid_idempotency_key",
            )
        session = await get_session_id(request, request.headers.get("X-Session-ID"))
        body = await request.body()
        fp = fingerprint(request.method, request.url.path, request.url.query, body)
        token, now = uuid4().hex, self.clock()
        claim = await self.store.claim(session, key, Reservation(fp, token, now), self.horizon(now))
        if claim.fingerprint != fp:
            raise ApiError(
                422,
                f"this {KEY_HEADER} was used for another request (different method, path or "
                "body) in this session; use a new key for a new request",
                code="idempotency_key_reused",
            )
        if claim.state is ClaimState.IN_PROGRESS:
            rid = getattr(request.state, "request_id", None)
            return error_response(
                409,
                "idempotency_key_in_progress",
                f"a request with this {KEY_HEADER} is still being processed; retry later",
                rid if isinstance(rid, str) else None,
                {"Retry-After": "1"},
            )
        if claim.state is ClaimState.DONE:
            assert claim.answer is not None  # a DONE claim carries its answer
            return Response(
                claim.answer.body,
                status_code=claim.answer.status,
                media_type="application/json",
                headers={REPLAYED_HEADER: "true"},
            )
        return await self._first(request, session, key, token, handler)

    async def _first(
        self, request: Request, session: str, key: str, token: str, handler: Handler
    ) -> Response:
        try:
            response = await handler(request)
        except BaseException:
            await self._release(session, key, token)
            raise
        if 200 <= response.status_code < 300 and isinstance(response.body, bytes):
            answer = StoredAnswer(response.status_code, response.body.decode())
            try:
                await self.store.complete(session, key, token, answer, self.clock())
            except Exception as exc:
                # The write is done and acknowledged all the same; the key stays reserved
                # (retries get 409) until the reservation goes stale.
                log.warning("could not store an idempotent answer: %s", type(exc).__name__)
        else:
            await self._release(session, key, token)
        return response

    async def _release(self, session: str, key: str, token: str) -> None:
        # Best effort: a reservation that cannot be dropped now goes stale by itself.
        try:
            await self.store.release(session, key, token)
        except Exception as exc:
            log.warning("could not release an idempotency key: %s", type(exc).__name__)

    async def purge(self) -> int:
        """Forget expired answers and stale reservations (the maintenance loop's chore)."""
        return await self.store.purge(self.horizon(self.clock()))

    def horizon(self, now: datetime) -> Horizon:
        """What still counts at ``now``: answers within the retention window, reservations
        younger than ``IN_PROGRESS_TIMEOUT``."""
        return Horizon(expired_before=now - self.ttl, stale_before=now - IN_PROGRESS_TIMEOUT)

    async def delete_session(self, session_id: str) -> None:
        await self.store.delete_session(session_id)


async def _idempotency_key(
    idempotency_key: Annotated[
        str | None,
        Header(
            alias=KEY_HEADER,
            description="Makes a retry of this write safe: the same key and request within "
            "WW_IDEMPOTENCY_TTL_HOURS get the first answer again (with "
            f"`{REPLAYED_HEADER}: true`) and change nothing. 1-255 visible ASCII characters; "
            "scoped to the session.",
        ),
    ] = None,
) -> None:
    """Only documents the header; ``IdempotentRoute`` acts on it before the endpoint runs."""


_RESPONSES: dict[int | str, dict[str, Any]] = {
    409: {"model": ErrorEnvelope, "description": "idempotency_key_in_progress (or a conflict)"},
    422: {"model": ErrorEnvelope, "description": "idempotency_key_reused (or invalid input)"},
}


class IdempotentRoute(APIRoute):
    """A route whose ``POST`` honours ``Idempotency-Key`` (other methods are idempotent)."""

    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        self.idempotent = "POST" in {m.upper() for m in kwargs.get("methods") or ()}
        if self.idempotent:
            documented = Depends(_idempotency_key)
            kwargs["dependencies"] = [*(kwargs.get("dependencies") or ()), documented]
            kwargs["responses"] = {**_RESPONSES, **(kwargs.get("responses") or {})}
        super().__init__(path, endpoint, **kwargs)

    def get_route_handler(self) -> Handler:
        handler = super().get_route_handler()
        if not self.idempotent:
            return handler

        async def route(request: Request) -> Response:
            key = request.headers.get(KEY_HEADER)
            if key is None:
                return await handler(request)
            idempotency: Idempotency = request.app.state.idempotency
            return await idempotency.run(request, key, handler)

        return route
