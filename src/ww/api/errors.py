"""The one error envelope: ``{"error": {"code", "message", "request_id"}}``."""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from ww.api.security import JSON_HEADERS
from ww.control.circuits import CircuitOpenError
from ww.models.api import ErrorBody, ErrorEnvelope
from ww.storage.diskspace import InsufficientStorageError
from ww.storage.ports import InvalidCursorError, StoreUnavailableError

__all__ = ["ApiError", "ErrorBody", "ErrorEnvelope", "error_response", "install_error_handlers"]

log = logging.getLogger(__name__)

_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "rate_limited",
    500: "internal_error",
    503: "service_unavailable",
    507: "insufficient_storage",
}


class ApiError(Exception):
    def __init__(self, status: int, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code or _CODES.get(status, "error")
        self.message = message


def _request_id(request: Request) -> str | None:
    rid = getattr(request.state, "request_id", None)
    return rid if isinstance(rid, str) else None


def error_response(
    status: int, code: str, message: str, request_id: str | None, headers: Any = None
) -> JSONResponse:
    body = ErrorEnvelope(error=ErrorBody(code=code, message=message, request_id=request_id))
    extra = {"X-Request-ID": request_id} if request_id else {}
    return JSONResponse(body.model_dump(), status_code=status, headers={**extra, **(headers or {})})


def _json_position(doc: object, pos: object) -> str:
    """``line L, column C`` (1-based) of a character offset into the body, as editors count."""
    if not isinstance(doc, str) or not isinstance(pos, int):
        return "position unknown"
    line = doc.count("\n", 0, pos) + 1
    column = pos - (doc.rfind("\n", 0, pos) + 1) + 1
    return f"line {line}, column {column}"


def _readable_loc(loc: Sequence[Any], body: Any, keep_last: bool) -> str:
    """The location of an error as the caller wrote it.

    Pydantic puts its own names into ``loc`` where a value went through a union or a
    validator (``function-after[_ordered(), list[SkillStep]]``, ``EpisodeContext``, ``str``).
    Walking the request body along ``loc`` tells them apart from the caller's: a part that
    is a key or index of the body at that point is the caller's and stays, any other part is
    pydantic's and goes. ``[key]`` (the key, not the value, is wrong) stays; so does the last
    part of a ``missing`` error, which by definition is not in the body.
    """
    parts = list(loc[1:]) if loc[:1] == ("body",) else list(loc)
    walk = loc[:1] == ("body",)
    node = body
    kept: list[str] = []
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        if not walk or part == "[key]" or (keep_last and last):
            kept.append(str(part))
        elif isinstance(node, dict) and isinstance(part, str) and part in node:
            kept.append(part)
            node = node[part]
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            kept.append(str(part))
            node = node[part]
    return ".".join(kept) or "body"


def _describe_validation(exc: RequestValidationError) -> str:
    errors = list(exc.errors())
    for err in errors:
        if err.get("type") == "json_invalid":
            reason = (err.get("ctx") or {}).get("error", "invalid JSON")
            where = _json_position(exc.body, err.get("loc", (None, None))[-1])
            return f"body: not valid JSON: {reason} at {where}"
    # A field that may be null reports a "should be None" error beside the real one.
    if any(e.get("type") != "none_required" for e in errors):
        errors = [e for e in errors if e.get("type") != "none_required"]
    by_loc: dict[str, list[str]] = {}
    for err in errors:
        loc = _readable_loc(err.get("loc", ()), exc.body, err.get("type") == "missing")
        msgs = by_loc.setdefault(loc, [])
        msg = str(err.get("msg", "invalid")).removeprefix("Value error, ")
        if msg not in msgs:
            msgs.append(msg)
    # The members of a union each report why the value is not theirs: one line, " or ".
    parts = [f"{loc}: {' or '.join(msgs)}" for loc, msgs in list(by_loc.items())[:10]]
    return "; ".join(parts) or "invalid request"


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
        return error_response(exc.status, exc.code, exc.message, _request_id(request))

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _CODES.get(exc.status_code, "error")
        return error_response(
            exc.status_code, code, str(exc.detail), _request_id(request), exc.headers
        )

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        return error_response(
            422, "validation_error", _describe_validation(exc), _request_id(request)
        )

    @app.exception_handler(InvalidCursorError)
    async def _cursor(request: Request, exc: InvalidCursorError) -> JSONResponse:
        return error_response(400, "invalid_cursor", str(exc), _request_id(request))

    @app.exception_handler(StoreUnavailableError)
    async def _unavailable(request: Request, exc: StoreUnavailableError) -> JSONResponse:
        # An open circuit knows when its trial call may pass; a dead store does not.
        retry = (
            {"Retry-After": str(max(1, math.ceil(exc.retry_after)))}
            if isinstance(exc, CircuitOpenError)
            else None
        )
        return error_response(
            503,
            "service_unavailable",
            f"dependency unavailable: {exc}",
            _request_id(request),
            retry,
        )

    # Registered apart from StoreUnavailableError, its base: Starlette picks the handler of
    # the most specific class. The message names sizes, never content.
    @app.exception_handler(InsufficientStorageError)
    async def _full(request: Request, exc: InsufficientStorageError) -> JSONResponse:
        return error_response(507, "insufficient_storage", str(exc), _request_id(request))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        # Sent by Starlette from outside every middleware: the security headers come here.
        return error_response(
            500, "internal_error", "internal error", _request_id(request), JSON_HEADERS
        )
