"""Floors that bench/latency.py measures recall against (issue 17), beside the server.

- :func:`embed_only_per_s_c8`: how many queries per second the embedding service answers
  when eight callers embed at once and nothing else runs. The server has no endpoint that
  only embeds, so this runs the server's own front, :class:`ww.embedding.EmbeddingService`
  (one inference thread, the same micro-batching, the batch size from ``Settings``), in
  the benchmark's process on the same model, while the server is idle. Recall at
  concurrency 8 meets its target when it reaches half of this rate.
- :func:`http_floor_raw`: a keep-alive ``http.client`` GET of ``/api/v1/health``, the
  cheapest request the server answers, without httpx's own cost (``http_floor_ms``, a 404
  through the benchmark's httpx client, stays the floor the recall target uses: it is the
  client the recalls are timed with).
"""

from __future__ import annotations

import asyncio
import http.client
import time
from collections.abc import Sequence
from typing import Any

from bench.bench_server import API
from bench.latency_load import percentiles
from ww.config import Settings
from ww.embedding import EmbeddingService, OnnxEmbedder

__all__ = ["CONCURRENCY", "embed_only_per_s_c8", "http_floor_raw"]

CONCURRENCY = 8


async def _embed_at_c8(service: EmbeddingService, queries: Sequence[str]) -> float:
    it = iter(queries)

    async def worker() -> None:
        for q in it:
            await service.embed_one(q)

    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
    return len(queries) / (time.perf_counter() - t0)


def embed_only_per_s_c8(embedder: OnnxEmbedder, queries: Sequence[str]) -> dict[str, Any]:
    """Queries embedded per second at concurrency 8 through a fresh ``EmbeddingService``
    (no cache, so every query reaches the model, as distinct recall queries do)."""
    settings = Settings()

    async def run() -> float:
        service = EmbeddingService(embedder, cache_size=0, batch_size=settings.embedding_batch_size)
        try:
            await service.embed_one("warm-up query")
            return await _embed_at_c8(service, queries)
        finally:
            await service.aclose()

    rate = asyncio.run(run())
    return {
        "per_s": round(rate, 1),
        "queries": len(queries),
        "how": "in the benchmark process through ww.embedding.EmbeddingService (the server's "
        "embedding front: one inference thread, micro-batching), same model, server idle",
    }


def http_floor_raw(base_url: str, n: int = 200) -> dict[str, float]:
    """Latency of ``GET /api/v1/health`` on one keep-alive ``http.client`` connection."""
    host, _, port = base_url.removeprefix("http://").partition(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    times = []
    try:
        for _ in range(n + 10):
            t0 = time.perf_counter()
            conn.request("GET", f"{API}/health")
            resp = conn.getresponse()
            resp.read()
            times.append((time.perf_counter() - t0) * 1000)
            if resp.status != 200:
                raise RuntimeError(f"health probe: {resp.status}")
    finally:
        conn.close()
    return percentiles(times[10:])  # the first few open the connection and warm the path
