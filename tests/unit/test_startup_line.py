"""The one start-up log line: where the data is, the backends, the model, changed flags."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from ww.api.app import create_app, startup_line
from ww.config import Settings, VectorBackend
from ww.control.flags import Flags
from ww.embedding import EmbeddingService, OnnxEmbedder
from ww.engine import build_engine


def test_app_start_up_logs_one_line(
    tmp_path: Path, onnx_embedder: OnnxEmbedder, caplog: pytest.LogCaptureFixture
) -> None:
    cfg = Settings(_env_file=None, data_dir=tmp_path / "data", environment="test")  # type: ignore[arg-type]
    service = EmbeddingService(onnx_embedder, cache_size=16, batch_size=8)
    flags = Flags(fsrs=True, capsule_encoding=False, spreading_activation=True)
    app = create_app(cfg, build_engine(cfg, embedder=service, flags=flags))
    with caplog.at_level(logging.INFO, logger="ww.api.app"), TestClient(app):
        pass
    lines = [r for r in caplog.records if r.name == "ww.api.app" and r.levelno == logging.INFO]
    assert len(lines) == 1
    line = lines[0].getMessage()
    assert f"records sqlite {tmp_path / 'data' / 'ww.sqlite3'}" in line
    assert f"vectors qdrant-edge {tmp_path / 'data'}" in line
    assert "model all-MiniLM-L6-v2-int8 (384 dimensions)" in line
    assert "(test)" in line
    # Only the flags that differ from their defaults (spreading_activation is on by default).
    assert line.endswith("flags changed from defaults: capsule_encoding=off, fsrs=on")


def test_server_addresses_without_credentials() -> None:
    cfg = Settings(
        _env_file=None,  # type: ignore[call-arg]
        neo4j_uri="bolt://neo4j:hunter2@db.example:7687",
        neo4j_password="a-long-neo4j-password",  # type: ignore[arg-type]
        qdrant_url="https://user:qkey@q.example:6333/prefix?api-key=abc",
        qdrant_api_key="the-qdrant-key",  # type: ignore[arg-type]
    )
    defaults = Flags.model_construct()  # the defaults, whatever WW_FLAG_* this shell sets
    line = startup_line(cfg, defaults, "m", 8)
    assert "records neo4j bolt://db.example:7687;" in line
    assert "vectors qdrant https://q.example:6333;" in line
    assert line.endswith("flags changed from defaults: none")
    for secret in ("hunter2", "a-long-neo4j-password", "qkey", "abc", "the-qdrant-key"):
        assert secret not in line
    neo_vectors = cfg.model_copy(update={"vector_backend": VectorBackend.NEO4J})
    assert "vectors neo4j (the records' database)" in startup_line(neo_vectors, defaults, "m", 8)
