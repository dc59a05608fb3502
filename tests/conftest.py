"""Fixtures shared by every suite: the real embedding model, loaded once per run."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from hypothesis import settings as hypothesis_settings

from tests.browser import launch_chromium
from tests.factories import T0
from tests.neo4j_launcher import Neo4jProcess, launcher_jar, reset_record_store
from tests.redis_server import RedisProcess, redis_binary
from ww.config import Settings
from ww.embedding import (
    VENDORED_MODEL,
    Embedder,
    EmbeddingService,
    OnnxEmbedder,
    vendored_model_dir,
)

if TYPE_CHECKING:
    from playwright.sync_api import Browser

# CI explores the same examples on every run, so a red build always reproduces; local runs
# keep searching new ones. Neither has a per-example deadline: that is a wall-clock assertion,
# and on two busy cores an example that validates a model took 376 ms against the default 200.
hypothesis_settings.register_profile("dev", deadline=None)
hypothesis_settings.register_profile("ci", deadline=None, derandomize=True, print_blob=True)
hypothesis_settings.load_profile("ci" if os.environ.get("CI") else "dev")

# The service's default of 100 requests a minute per caller and route group would turn the
# suites that share one app per module (and schemathesis) into 429s. Limiting stays on, so
# every app of the suite runs the limiter and answers its headers; tests/api/test_rate_limit.py
# sets its own small limits. Subprocess servers get their environment from their fixtures.
os.environ.setdefault("WW_RATE_LIMIT", "1000000/minute")


class ManualClock:
    """An injectable clock that only moves when told to."""

    def __init__(self, start: datetime = T0) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kw: float) -> None:
        self.now += timedelta(**kw)


@pytest.fixture(scope="session")
def onnx_embedder() -> OnnxEmbedder:
    return OnnxEmbedder(vendored_model_dir(), model_id=VENDORED_MODEL)


@pytest.fixture
def embedding_service(onnx_embedder: Embedder) -> EmbeddingService:
    return EmbeddingService(onnx_embedder, cache_size=256, batch_size=32)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    cfg = Settings(_env_file=None, data_dir=tmp_path / "data", environment="test")  # type: ignore[arg-type]
    reset_record_store(cfg)
    return cfg


@pytest.fixture
def data_dir(settings: Settings) -> Iterator[Path]:
    yield settings.data_dir


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--server-tier",
        action="store_true",
        help="run the record-store contract and the API suite against Neo4j only "
        "(make test-server)",
    )


# Fixture params that name a backend (tests/contract/conftest.py, test_vector_congruence.py).
_BACKEND_PARAMS = ("records", "side_records", "vectors", "pair")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not config.getoption("--server-tier"):
        return
    # The server tier's run: the store and vector-index contracts on Neo4j only (the
    # embedded backends already ran in `make test`).
    keep, drop = [], []
    for item in items:
        params = getattr(item, "callspec", None)
        backends = [] if params is None else [params.params.get(k) for k in _BACKEND_PARAMS]
        chosen = [b for b in backends if b is not None]
        (drop if any(not str(b).startswith("neo4j") for b in chosen) else keep).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """A headless Debian chromium for a module's tests (tests/browser.py; skipped locally
    without it, failed under CI). Module-scoped, not session: playwright's sync API keeps an
    event loop running while it is open, which would stop pytest-asyncio's tests."""
    with launch_chromium() as launched:
        yield launched


@pytest.fixture(scope="session")
def server_tier(request: pytest.FixtureRequest) -> bool:
    return bool(request.config.getoption("--server-tier"))


@pytest.fixture(scope="session")
def neo4j_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Neo4jProcess]:
    """One test Neo4j for the run, started on first use (skipped locally when not built)."""
    server = Neo4jProcess(launcher_jar(), tmp_path_factory.mktemp("neo4j") / "home")
    server.start()
    print(f"\nNeo4j started at {server.uri} in {server.start_seconds:.1f}s")
    yield server
    server.stop()


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisProcess]:
    """One real redis-server for the run (skipped locally when not installed, fails in CI)."""
    server = RedisProcess(redis_binary(), tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def redis_url(redis_server: RedisProcess) -> str:
    """The shared redis-server's URL, emptied for this test."""
    redis_server.flush()
    return redis_server.url


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisProcess]:
    """A redis-server of this test alone, which it may stop and start again (same port)."""
    server = RedisProcess(redis_binary(), tmp_path / "redis")
    server.start()
    yield server
    server.stop()
