"""One suite, two modes: every test that takes ``ww`` (or ``aww``) runs against a real
server on a loopback port (``remote``: uvicorn in a thread, real HTTP) and against the
same application in process (``embedded``), as qdrant-client's local/remote congruence
tests do. Both apps share the session's real embedding model."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from fastapi import FastAPI
from pydantic import SecretStr

from tests.sdk.server import make_app, serve
from ww.config import Settings
from ww.embedding import EmbeddingService
from ww.sdk import AsyncWorldWeaver, WorldWeaver, _core

SESSION = "sdk-tests"
API_KEY = "sdk-test-key-0123456789"
ADMIN_KEY = "sdk-test-admin-0123456789"
JWT_SECRET = "sdk-test-jwt-secret-0123456789-0123456789"

MODES = ["remote", "embedded"]


@contextmanager
def client(mode: str, app: FastAPI, **options: Any) -> Iterator[WorldWeaver]:
    options.setdefault("session_id", SESSION)
    if mode == "embedded":
        with WorldWeaver.embedded(app=app, **options) as ww:
            yield ww
        return
    with serve(app) as url, WorldWeaver(url, **options) as ww:
        yield ww


@pytest.fixture(params=MODES)
def mode(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def app(settings: Settings, embedding_service: EmbeddingService) -> FastAPI:
    return make_app(settings, embedding_service)


@pytest.fixture
def secured_app(settings: Settings, embedding_service: EmbeddingService) -> FastAPI:
    return make_app(
        settings,
        embedding_service,
        api_key=SecretStr(API_KEY),
        admin_key=SecretStr(ADMIN_KEY),
        jwt_secret=SecretStr(JWT_SECRET),
    )


@pytest.fixture
def ww(mode: str, app: FastAPI) -> Iterator[WorldWeaver]:
    with client(mode, app) as c:
        yield c


@pytest.fixture
async def aww(mode: str, app: FastAPI) -> AsyncIterator[AsyncWorldWeaver]:
    if mode == "embedded":
        async with AsyncWorldWeaver.embedded(app=app, session_id=SESSION) as c:
            yield c
        return
    with serve(app) as url:
        async with AsyncWorldWeaver(url, session_id=SESSION) as c:
            yield c


@pytest.fixture
def slept(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The SDK's waits between retries, recorded instead of slept (the sync client's; the
    server's own clock and sleeps are left alone)."""
    waits: list[float] = []

    async def record(_: _core.SyncIO, seconds: float) -> None:
        waits.append(seconds)

    monkeypatch.setattr(_core.SyncIO, "sleep", record)
    return waits
