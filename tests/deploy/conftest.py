from __future__ import annotations

from pathlib import Path

import pytest

from ww import __version__
from ww.api import create_app
from ww.config import Settings
from ww.embedding import EmbeddingService, OnnxEmbedder
from ww.engine import build_engine


@pytest.fixture(scope="session")
def served_get_paths(
    onnx_embedder: OnnxEmbedder, tmp_path_factory: pytest.TempPathFactory
) -> set[str]:
    """The GET paths of the real app's OpenAPI schema (built, never started)."""
    settings = Settings(data_dir=Path(tmp_path_factory.mktemp("openapi")))
    engine = build_engine(
        settings, embedder=EmbeddingService(onnx_embedder, cache_size=8, batch_size=8)
    )
    schema = create_app(settings, engine).openapi()
    return {path for path, ops in schema["paths"].items() if "get" in ops}


@pytest.fixture(scope="session")
def version() -> str:
    return __version__
