"""Request-scoped dependencies: what start-up put in the app's state, and the caller's
session.

They are ``async`` although nothing in them waits: FastAPI runs a plain ``def`` dependency
on a worker thread, a hop per dependency per request.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Annotated, TypeVar

from fastapi import Depends, Header, Request

from ww.api.auth import may_use_session
from ww.api.errors import ApiError
from ww.config import SESSION_ID_PATTERN, Settings
from ww.engine import MemoryEngine

__all__ = [
    "EngineDep",
    "SessionDep",
    "SettingsDep",
    "check_session",
    "from_state",
    "get_engine",
    "get_session_id",
]

T = TypeVar("T")

_SESSION = re.compile(SESSION_ID_PATTERN)


def from_state(name: str, kind: type[T]) -> Callable[[Request], Awaitable[T]]:
    """A dependency answering the ``kind`` that the app's start-up put in its state as
    ``name`` (``kind`` types the answer; it is not checked on every request)."""

    async def get(request: Request) -> T:
        value: T = getattr(request.app.state, name)
        return value

    get.__name__ = get.__qualname__ = f"get_{name}"
    return get


get_engine = from_state("engine", MemoryEngine)
get_settings = from_state("settings", Settings)


async def get_session_id(
    request: Request,
    x_session_id: Annotated[
        str | None,
        Header(
            alias="X-Session-ID",
            description="Session to act in (letters, digits, '_', '.', ':', '-'; at most 128). "
            "Defaults to WW_SESSION_ID.",
        ),
    ] = None,
) -> str:
    if x_session_id is None:
        return check_session(request, (await get_settings(request)).session_id)
    if not _SESSION.match(x_session_id):
        raise ApiError(
            400,
            "X-Session-ID must be 1-128 characters of letters, digits, '_', '.', ':' or '-', "
            "starting with a letter or digit",
            code="invalid_session_id",
        )
    return check_session(request, x_session_id)


def check_session(request: Request, session_id: str, message: str = "not found") -> str:
    """``session_id`` if the caller's key may use it; otherwise the 404 a memory that does
    not exist gets, so a bound key learns nothing about other sessions."""
    if not may_use_session(getattr(request.state, "principal", None), session_id):
        raise ApiError(404, message, code="not_found")
    return session_id


EngineDep = Annotated[MemoryEngine, Depends(get_engine)]
SessionDep = Annotated[str, Depends(get_session_id)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
