"""Fixtures shared by every suite: the real embedding model, loaded once per run."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import settings as hypothesis_settings

from tests.factories import T0
from ww.config import Settings
from ww.embedding import (
    VENDORED_MODEL,
    Embedder,
    EmbeddingService,
    OnnxEmbedder,
    vendored_model_dir,
)

# CI explores the same examples on every run, so a red build always reproduces; local runs
# keep searching new ones.
hypothesis_settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI"):
    hypothesis_settings.load_profile("ci")


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
    return Settings(_env_file=None, data_dir=tmp_path / "data", environment="test")  # type: ignore[arg-type]


@pytest.fixture
def data_dir(settings: Settings) -> Iterator[Path]:
    yield settings.data_dir
