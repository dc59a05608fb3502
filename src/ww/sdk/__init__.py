"""The Python SDK: ``WorldWeaver`` (blocking) and ``AsyncWorldWeaver`` (asyncio) over
``httpx``, against a server or an engine in this process (``embedded``). ``docs/sdk.md``.

Importing it needs only ``httpx`` and ``pydantic``: the models come from ``ww.models``,
which imports neither FastAPI nor the engine."""

from ww.sdk._core import Retries
from ww.sdk.client import DEFAULT_URL, AsyncWorldWeaver, WorldWeaver
from ww.sdk.errors import (
    APIConnectionError,
    APIError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    ConflictError,
    InsufficientStorageError,
    NotFoundError,
    PayloadTooLargeError,
    PermissionDeniedError,
    RateLimitedError,
    ServerError,
    UnavailableError,
    ValidationError,
    WorldWeaverError,
)

__all__ = [
    "DEFAULT_URL",
    "APIConnectionError",
    "APIError",
    "APIStatusError",
    "APITimeoutError",
    "AsyncWorldWeaver",
    "AuthenticationError",
    "BadRequestError",
    "ConflictError",
    "InsufficientStorageError",
    "NotFoundError",
    "PayloadTooLargeError",
    "PermissionDeniedError",
    "RateLimitedError",
    "Retries",
    "ServerError",
    "UnavailableError",
    "ValidationError",
    "WorldWeaver",
    "WorldWeaverError",
]
