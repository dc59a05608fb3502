from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from tests.deploy.rendering import ROOT
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


@pytest.fixture(scope="session")
def chart(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of deploy/helm/world-weaver without its dependency list: the Neo4j and Qdrant
    charts come from their repositories, which these machines cannot reach, and ``helm
    template`` refuses a chart whose listed dependencies are not downloaded."""
    source = ROOT / "deploy" / "helm" / "world-weaver"
    copy = tmp_path_factory.mktemp("chart") / source.name
    shutil.copytree(source, copy)
    meta = yaml.safe_load((copy / "Chart.yaml").read_text())
    del meta["dependencies"]
    (copy / "Chart.yaml").write_text(yaml.safe_dump(meta))
    return copy
