"""Request-scoped dependencies: the engine and the caller's session.

They are ``async`` although nothing in them waits: FastAPI runs a plain ``def`` dependency
on a worker thread, a hop per dependency per request.
"""

from __future__ import annotations

import re
from typing import Annotated

from fastapi import Depends, Header, Request

from ww.api.errors import ApiError
from ww.config import SESSION_ID_PATTERN, Settings
from ww.engine import MemoryEngine

__all__ = ["EngineDep", "SessionDep", "SettingsDep", "get_engine", "get_session_id"]

_SESSION = re.compile(SESSION_ID_PATTERN)


async def get_engine(request: Request) -> MemoryEngine:
    engine: MemoryEngine = request.app.state.engine
    return engine


async def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


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
        return (await get_settings(request)).session_id
    if not _SESSION.match(x_session_id):
        raise ApiError(
            400,
            "X-Session-ID must be 1-128 characters of letters, digits, '_', '.', ':' or '-', "
            "starting with a letter or digit",
            code="invalid_session_id",
        )
    return x_session_id


EngineDep = Annotated[MemoryEngine, Depends(get_engine)]
SessionDep = Annotated[str, Depends(get_session_id)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
