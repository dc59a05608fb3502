"""bench/scale.py: the pool embedder's vectors and a tiny ingest through the engine."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np

from bench.scale import (
    PoolEmbedder,
    as_after_a_crash,
    closed_cleanly,
    ingest,
    markdown,
    sessions_for,
)
from bench.synthetic import generate_memories
from ww.config import Settings
from ww.embedding import EmbeddingService
from ww.engine import build_engine


def _pool(n: int, dim: int = 16) -> np.ndarray:
    rng = np.random.default_rng(3)
    v = rng.standard_normal((n, dim)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def test_pool_embedder_gives_each_memory_its_pool_vector_with_a_little_noise() -> None:
    pool = _pool(5)
    emb = PoolEmbedder(pool, "model-x")
    rows = emb.embed(["anything (#0)", "other text (#5)", "x (#7)"])
    assert rows.shape == (3, 16) and emb.model_id == "model-x" and emb.dimension == 16
    assert np.allclose(np.linalg.norm(rows, axis=1), 1.0, atol=1e-5)
    # Memories 0 and 5 share pool entry 0: both close to it, neither equal to it or each other.
    assert float(rows[0] @ pool[0]) > 0.99 and float(rows[1] @ pool[0]) > 0.99
    assert float(rows[0] @ rows[1]) < 0.99999
    assert float(rows[2] @ pool[2]) > 0.99
    # Deterministic: the same text gives the same vector.
    assert np.array_equal(emb.embed(["x (#7)"])[0], rows[2])


def test_ingest_fills_every_session_and_reports_it(tmp_path: Path) -> None:
    bodies = generate_memories(30, seed=4)
    emb = PoolEmbedder(_pool(30, dim=384), "pool-model")
    result = asyncio.run(ingest(tmp_path / "data", bodies, emb, total=120, layout="ten"))
    assert result["memories"] == 120 and result["sessions"] == len(sessions_for("ten")) == 10
    assert result["store_ingest_per_s"] > 0
    report = {
        "scale": {
            **result,
            "recall": {"c1": {"p50": 1, "p95": 2}, "c8": {"p50": 3, "p95": 4}, "c8_per_s": 5},
            "peak_rss_mb": 5000.0,
            "startup_s": 1.0,
        }
    }
    text = markdown(report)
    assert "| RSS <= 4 GB | 5000.0 | no |" in text
    assert "| start-up <= 10 s | 1.0 | yes |" in text


def test_the_first_start_is_measured_as_after_a_crash(tmp_path: Path) -> None:
    emb = PoolEmbedder(_pool(10, dim=384), "pool-model")
    asyncio.run(
        ingest(tmp_path / "data", generate_memories(10, seed=5), emb, total=10, layout="one")
    )

    async def opened_after_a_clean_close() -> bool:
        service = EmbeddingService(emb, cache_size=0, batch_size=8)
        settings = Settings(_env_file=None, data_dir=tmp_path / "data", environment="test")  # type: ignore[call-arg]
        engine = build_engine(settings, embedder=service)
        await engine.open()
        await engine.close()
        return engine.closed_cleanly_before

    assert closed_cleanly(tmp_path / "data")  # the ingest closed its engine cleanly
    assert asyncio.run(opened_after_a_clean_close())
    as_after_a_crash(tmp_path / "data")
    assert not closed_cleanly(tmp_path / "data")
    assert not asyncio.run(opened_after_a_clean_close())
