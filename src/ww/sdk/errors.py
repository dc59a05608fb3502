"""What the SDK raises: one class per kind of failure, each carrying the server's error
envelope (``{"error": {"code", "message", "request_id"}}``) when there was one."""

from __future__ import annotations

from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

__all__ = [
    "APIConnectionError",
    "APIError",
    "APIStatusError",
    "APITimeoutError",
    "AuthenticationError",
    "BadRequestError",
    "ConflictError",
    "InsufficientStorageError",
    "NotFoundError",
    "PayloadTooLargeError",
    "PermissionDeniedError",
    "RateLimitedError",
    "ServerError",
    "UnavailableError",
    "ValidationError",
    "WorldWeaverError",
    "error_for",
]


class WorldWeaverError(Exception):
    """The base of every error the SDK raises."""


class APIConnectionError(WorldWeaverError):
    """No answer came: the server could not be reached or the connection broke."""


class APITimeoutError(APIConnectionError):
    """No answer came within the timeout."""


class APIError(WorldWeaverError):
    """Kept as the one name to catch for any answer that was an error."""


class APIStatusError(APIError):
    """The server answered with an error status. ``code`` is the envelope's machine-readable
    code (``not_found``, ``external_id_conflict``...), ``request_id`` the id to quote to the
    operator (the server logs it), ``retry_after`` the seconds the server asked to wait."""

    status_code: int = 0

    def __init__(
        self,
        message: str,
        *,
        status_code: int,
        code: str,
        request_id: str | None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(f"{status_code} {code}: {message}")
        self.message = message
        self.status_code = status_code
        self.code = code
        self.request_id = request_id
        self.retry_after = retry_after


class BadRequestError(APIStatusError):
    """400: a malformed parameter, header or cursor."""


class AuthenticationError(APIStatusError):
    """401: no credential, or one the server does not accept."""


class PermissionDeniedError(APIStatusError):
    """403: the credential is valid but may not do this."""


class NotFoundError(APIStatusError):
    """404: no such memory, session or route (or one the credential may not see)."""


class ConflictError(APIStatusError):
    """409: an external id, relation or idempotency key already in use."""


class PayloadTooLargeError(APIStatusError):
    """413: the body is larger than the server accepts."""


class ValidationError(APIStatusError):
    """422: the body or a parameter breaks the schema; ``message`` says where."""


class RateLimitedError(APIStatusError):
    """429: too many requests; retried by the client until its retries run out."""


class ServerError(APIStatusError):
    """5xx: the server failed."""


class UnavailableError(ServerError):
    """503: a store the server depends on is down; retried like a 429."""


class InsufficientStorageError(ServerError):
    """507: the server's disk is below its free-space watermark; not retried (it lasts)."""


_BY_STATUS: dict[int, type[APIStatusError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: ConflictError,
    413: PayloadTooLargeError,
    422: ValidationError,
    429: RateLimitedError,
    503: UnavailableError,
    507: InsufficientStorageError,
}


def retry_after(response: httpx.Response) -> float | None:
    """``Retry-After`` in seconds (a number or an HTTP date), or None without one."""
    value = response.headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def error_for(response: httpx.Response) -> APIStatusError:
    """The error an answer with an error status stands for, from its envelope; an answer
    without one (a proxy's page) keeps its status and a generic code."""
    status = response.status_code
    code, message = "error", response.reason_phrase or "error"
    request_id = response.headers.get("x-request-id")
    try:
        body: Any = response.json()
    except ValueError:
        body = None
    envelope = body.get("error") if isinstance(body, dict) else None
    if isinstance(envelope, dict):
        code = str(envelope.get("code") or code)
        message = str(envelope.get("message") or message)
        request_id = envelope.get("request_id") or request_id
    cls = _BY_STATUS.get(status) or (ServerError if status >= 500 else APIStatusError)
    return cls(
        message,
        status_code=status,
        code=code,
        request_id=request_id,
        retry_after=retry_after(response),
    )
