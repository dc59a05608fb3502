from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from tests.conftest import ManualClock
from tests.neo4j_launcher import Neo4jProcess
from ww.api import create_app
from ww.config import Settings
from ww.embedding import EmbeddingService
from ww.engine import build_engine


@pytest.fixture(scope="session", autouse=True)
def _record_store_backend(server_tier: bool, request: pytest.FixtureRequest) -> Iterator[None]:
    """Under ``--server-tier`` every app of the suite keeps its records and vectors in the
    test Neo4j, the shareable tier that several workers can run on: the app reads
    ``WW_NEO4J_URI`` and ``WW_VECTOR_BACKEND`` as a deployment would, so the tests
    themselves are the same on both tiers."""
    if not server_tier:
        yield
        return
    server: Neo4jProcess = request.getfixturevalue("neo4j_server")
    env = {"WW_NEO4J_URI": server.uri, "WW_VECTOR_BACKEND": "neo4j"}
    old = {name: os.environ.get(name) for name in env}
    os.environ.update(env)
    yield
    for name, value in old.items():
        if value is None:
            del os.environ[name]
        else:
            os.environ[name] = value


@pytest.fixture
def client(
    settings: Settings, embedding_service: EmbeddingService, clock: ManualClock
) -> Iterator[TestClient]:
    engine = build_engine(settings, clock=clock, embedder=embedding_service)
    with TestClient(create_app(settings, engine)) as c:
        yield c
