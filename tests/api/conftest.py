from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from tests.conftest import ManualClock
from ww.api import create_app
from ww.config import Settings
from ww.embedding import EmbeddingService
from ww.engine import build_engine


@pytest.fixture
def client(
    settings: Settings, embedding_service: EmbeddingService, clock: ManualClock
) -> Iterator[TestClient]:
    engine = build_engine(settings, clock=clock, embedder=embedding_service)
    with TestClient(create_app(settings, engine)) as c:
        yield c
