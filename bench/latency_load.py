"""Load generators and probes for bench/latency.py: bare embedder, batch ingest, recall.

Everything here talks to a running :class:`bench.bench_server.Server` over HTTP (or times
the bare embedder in this process); bench/latency.py strings the phases together.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import os
import time
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from bench.bench_server import API, Server, log
from ww.embedding import OnnxEmbedder
from ww.engine.maintenance import Maintenance

__all__ = [
    "INDEXING_THRESHOLD",
    "KEEPALIVE_SESSION",
    "MAINT_INTERVAL_S",
    "MAINT_QUIET_S",
    "OPTIMISE_LOG",
    "REQUEST_TIMEOUT_S",
    "QueryPool",
    "embed_query_ms",
    "http_floor",
    "index_state",
    "ingest",
    "keepalive",
    "optimise_events",
    "percentiles",
    "raw_embed_rate",
    "recall_latencies",
    "recall_phase",
    "wait_for_optimise",
]

REQUEST_TIMEOUT_S = 900.0
OPTIMISE_LOG = "optimising the vector index"
KEEPALIVE_SESSION = "bench-keepalive"
KEEPALIVE_EVERY_S = 3.0

_maint_defaults = inspect.signature(Maintenance.__init__).parameters
INDEXING_THRESHOLD: int = _maint_defaults["indexing_threshold"].default
MAINT_INTERVAL_S: float = _maint_defaults["interval_s"].default
MAINT_QUIET_S: float = _maint_defaults["quiet_s"].default


def percentiles(samples_ms: Sequence[float]) -> dict[str, float]:
    arr = np.asarray(samples_ms, dtype=np.float64)
    p50, p95, p99 = np.percentile(arr, [50, 95, 99])
    return {
        "p50": round(float(p50), 2),
        "p95": round(float(p95), 2),
        "p99": round(float(p99), 2),
        "mean": round(float(arr.mean()), 2),
        "max": round(float(arr.max()), 2),
        "n": len(samples_ms),
    }


# -- the bare embedder ------------------------------------------------------------------------
def raw_embed_rate(embedder: OnnxEmbedder, texts: Sequence[str]) -> float:
    embedder.embed(list(texts[:8]))  # warm-up
    t0 = time.perf_counter()
    embedder.embed(list(texts))
    return len(texts) / (time.perf_counter() - t0)


def embed_query_ms(embedder: OnnxEmbedder, queries: Sequence[str]) -> dict[str, float]:
    embedder.embed([queries[0]])
    times = []
    for q in queries:
        t0 = time.perf_counter()
        embedder.embed([q])
        times.append((time.perf_counter() - t0) * 1000)
    return percentiles(times)


# -- load generators --------------------------------------------------------------------------
async def ingest(
    base_url: str, session: str, memories: Sequence[dict[str, Any]], batch: int, clients: int
) -> tuple[float, list[str]]:
    """POST all memories in batches with ``clients`` requests in flight; (seconds, some ids)."""
    batches = [list(memories[i : i + batch]) for i in range(0, len(memories), batch)]
    pending: Iterator[list[dict[str, Any]]] = iter(batches)
    done = 0
    ids: list[str] = []
    t0 = time.perf_counter()
    last_report = t0

    async with httpx.AsyncClient(
        base_url=base_url,
        timeout=REQUEST_TIMEOUT_S,
        headers={"X-Session-ID": session},
        trust_env=False,
    ) as client:

        async def worker() -> None:
            nonlocal done, last_report
            for chunk in pending:
                r = await client.post(f"{API}/episodes/batch", json={"episodes": chunk})
                if r.status_code != 201:
                    raise RuntimeError(f"batch ingest: {r.status_code} {r.text[:500]}")
                body = r.json()
                if body["count"] != len(chunk):
                    raise RuntimeError(f"batch ingest stored {body['count']} of {len(chunk)}")
                if len(ids) < 10:
                    ids.append(body["episodes"][0]["id"])
                done += len(chunk)
                now = time.perf_counter()
                if now - last_report > 30:
                    last_report = now
                    log(f"  ingested {done}/{len(memories)} ({done / (now - t0):.0f}/s)")

        await asyncio.gather(*(worker() for _ in range(clients)))
    return time.perf_counter() - t0, ids


async def recall_latencies(
    client: httpx.AsyncClient, queries: Sequence[str], concurrency: int
) -> tuple[list[float], int]:
    """Client-side latency (ms) of each recall; also how many returned no hit."""
    it = iter(queries)
    times: list[float] = []
    empty = 0

    async def worker() -> None:
        nonlocal empty
        for q in it:
            t0 = time.perf_counter()
            r = await client.post(
                f"{API}/episodes/recall", json={"query": q, "limit": 10, "learn": False}
            )
            elapsed = (time.perf_counter() - t0) * 1000
            if r.status_code != 200:
                raise RuntimeError(f"recall: {r.status_code} {r.text[:500]}")
            if not r.json()["hits"]:
                empty += 1
            times.append(elapsed)

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return times, empty


async def http_floor(client: httpx.AsyncClient, n: int = 100) -> dict[str, float]:
    """Latency of a 404 by id: client + uvicorn + FastAPI + one SQLite point lookup."""
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        r = await client.get(f"{API}/episodes/{uuid.uuid4()}")
        times.append((time.perf_counter() - t0) * 1000)
        if r.status_code != 404:
            raise RuntimeError(f"floor probe: {r.status_code}")
    return percentiles(times)


class QueryPool:
    """Hands out distinct queries so the server's embedding cache never answers."""

    def __init__(self, queries: Sequence[str]) -> None:
        self._queries = list(queries)
        self._next = 0

    def take(self, n: int) -> list[str]:
        if self._next + n > len(self._queries):
            raise RuntimeError("query pool exhausted")
        out = self._queries[self._next : self._next + n]
        self._next += n
        return out


async def recall_phase(
    client: httpx.AsyncClient, pool: QueryPool, c1: int, c8: int
) -> dict[str, Any]:
    await recall_latencies(client, pool.take(10), 1)  # warm-up
    c1_times, c1_empty = await recall_latencies(client, pool.take(c1), 1)
    t0 = time.perf_counter()
    c8_times, c8_empty = await recall_latencies(client, pool.take(c8), 8)
    c8_wall = time.perf_counter() - t0
    return {
        "c1": percentiles(c1_times),
        "c8": percentiles(c8_times),
        "c8_per_s": round(c8 / c8_wall, 1),
        "empty_results": c1_empty + c8_empty,
        "loadavg": [round(x, 2) for x in os.getloadavg()],
    }


async def keepalive(client: httpx.AsyncClient, episode_id: str, stop: asyncio.Event) -> int:
    """PATCH one episode of another session now and then so writes never go quiet."""
    sent = 0
    while not stop.is_set():
        r = await client.patch(
            f"{API}/episodes/{episode_id}",
            json={"importance": 0.5},
            headers={"X-Session-ID": KEEPALIVE_SESSION},
        )
        r.raise_for_status()
        sent += 1
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), KEEPALIVE_EVERY_S)
    return sent


async def wait_for_optimise(
    server: Server, client: httpx.AsyncClient, session: str, seen: int
) -> float | None:
    """Wait for a maintenance HNSW build after ``seen`` earlier ones; None if none comes.

    Returns seconds from the call to a probe recall answered after the build started (the
    probe queues behind ``optimize()`` on the single vector-index thread).
    """
    t0 = time.perf_counter()
    deadline = t0 + MAINT_QUIET_S + 2 * MAINT_INTERVAL_S + 15
    while server.log_text().count(OPTIMISE_LOG) <= seen:
        if time.perf_counter() > deadline:
            return None
        await asyncio.sleep(0.5)
    log("  optimise started; probing until it is done")
    r = await client.post(
        f"{API}/episodes/recall",
        json={"query": "optimise probe", "limit": 1, "learn": False},
        headers={"X-Session-ID": session},
    )
    r.raise_for_status()
    return time.perf_counter() - t0


def optimise_events(server: Server) -> list[str]:
    """Timestamps of the server's "optimising the vector index" log lines."""
    return [ln.split(" INFO")[0] for ln in server.log_text().splitlines() if OPTIMISE_LOG in ln]


def index_state(data_dir: Path, dimension: int) -> dict[str, int] | None:
    """Points and HNSW-indexed vectors in the shard (opened here after the server stopped)."""
    try:
        from ww.storage.qdrant.edge import QdrantEdgeIndex

        async def read() -> dict[str, int]:
            idx = QdrantEdgeIndex(data_dir / "vectors", dimension)
            await idx.open()
            try:
                info = await idx._run(lambda s: s.info())
                return {
                    "points": int(info.points_count),
                    "indexed_vectors": int(info.indexed_vectors_count),
                    "segments": int(getattr(info, "segments_count", -1)),
                }
            finally:
                await idx.close()

        return asyncio.run(read())
    except Exception as exc:
        log(f"  could not read the index state: {exc}")
        return None
