"""Recall on the server tier (Neo4j records and vectors, 4 workers) with and without the
per-session HNSW index, at 10k and 100k memories in one session.

    python bench/server_recall.py [--sizes 10000,100000] [--queries 50] [--anchors 2000]
                                  [--out DIR]

Starts a test Neo4j from the harness launcher (tools/neo4j-harness) on a loopback port and
fills one session per size *directly through the stores* (records, then vectors in batches
of 1,000), not through the embedder: embedding 100k texts one at a time would take a quarter
of an hour on the 2-core VM. Each memory is a synthetic text (bench/synthetic.py) and its
vector a real embedding of one of ``--anchors`` synthetic texts plus Gaussian noise (the
pair's cosine about 0.85), so the vectors are clustered as embeddings are. Queries are real
embeddings of synthetic queries.

Then, same run, same data:

- store level: top-10 and top-50 searches by exact scan and through the index, per query,
  with the hit overlap@10 of the index against the exact scan;
- over HTTP: ``python -m ww.api.server`` with ``WW_API_WORKERS=4`` and
  ``WW_VECTOR_BACKEND=neo4j``, once with ``WW_NEO4J_VECTOR_INDEX_THRESHOLD=0`` (exact scan)
  and once with the default (index), recall p50/p95 at concurrency 1 and the overlap@10 of
  the two servers' answers to the same queries.

Writes ``DIR/server_recall.json`` and ``DIR/server_recall.md``. A benchmark, not a test.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import uuid4

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
    sys.path.insert(1, str(ROOT / "src"))

import httpx  # noqa: E402
import numpy as np  # noqa: E402

from bench.bench_server import API, Server, log  # noqa: E402
from bench.latency_load import percentiles  # noqa: E402
from bench.synthetic import generate_memories, generate_queries  # noqa: E402
from tests.neo4j_launcher import Neo4jProcess, launcher_jar  # noqa: E402
from ww.config import Settings  # noqa: E402
from ww.embedding import Embedder, load_embedder  # noqa: E402
from ww.engine.dynamics import Fsrs  # noqa: E402
from ww.models import Episode, EpisodeContext, EpisodeFilter, Outcome  # noqa: E402
from ww.storage import VectorItem  # noqa: E402
from ww.storage.neo4j.records import Neo4jRecordStore  # noqa: E402
from ww.storage.neo4j.vectors import DEFAULT_INDEX_THRESHOLD, Neo4jVectorIndex  # noqa: E402
from ww.storage.payload import episode_payload  # noqa: E402

__all__ = ["PAGE_CACHE_MB", "embed_anchors", "main"]

WORKERS = 4
# Neo4j's page cache as docker-compose.yml deploys it (NEO4J_PAGECACHE): a session of 100,000
# memories holds about 460 MB of store files, and the test launcher's 64 MB made every
# rescored vector a page-cache miss.
PAGE_CACHE_MB = 512
BATCH = 1000
NOISE = 0.6  # relative to the unit anchor: cosine(memory, its anchor) about 0.86


def _episodes(session: str, size: int, seed: int) -> list[Episode]:
    now = datetime.now(UTC)
    fsrs = Fsrs().new_state(now)
    out = []
    for m in generate_memories(size, seed=seed):
        out.append(
            Episode(
                id=uuid4(),
                session_id=session,
                content=m["content"],
                timestamp=datetime.fromisoformat(m["timestamp"]),
                ingested_at=now,
                speaker=m.get("speaker"),
                source=m.get("source"),
                context=EpisodeContext(**m.get("context", {})),
                metadata=m.get("metadata", {}),
                outcome=Outcome(m.get("outcome", "neutral")),
                fsrs=fsrs,
            )
        )
    return out


def _vectors(anchors: np.ndarray, size: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    dim = anchors.shape[1]
    noise = rng.standard_normal((size, dim)).astype(np.float32) * (NOISE / np.sqrt(dim))
    v = anchors[rng.integers(0, len(anchors), size)] + noise
    return (v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float32)


async def _fill(
    uri: str, session: str, episodes: list[Episode], vectors: np.ndarray
) -> dict[str, float]:
    records = Neo4jRecordStore(uri)
    index = Neo4jVectorIndex(uri, vectors.shape[1])
    await records.open()
    await index.open()
    try:
        await records.ensure_session(session, datetime.now(UTC))
        t0 = time.perf_counter()
        for start in range(0, len(episodes), BATCH):
            batch = episodes[start : start + BATCH]
            await records.insert_episodes(session, batch)
            await records.mark_indexed(session, [e.id for e in batch])
        t1 = time.perf_counter()
        for start in range(0, len(episodes), BATCH):
            items = [
                VectorItem(e.id, vectors[start + i], episode_payload(e))
                for i, e in enumerate(episodes[start : start + BATCH])
            ]
            await index.upsert(session, items)
        t2 = time.perf_counter()
    finally:
        await index.close()
        await records.close()
    n = len(episodes)
    return {"records_per_s": round(n / (t1 - t0), 1), "vectors_per_s": round(n / (t2 - t1), 1)}


def embed_anchors(embedder: Embedder, n: int, seed: int) -> np.ndarray:
    """Real embeddings of ``n`` synthetic texts: the centres the filled vectors cluster on."""
    log(f"embedding {n} anchor texts")
    texts = [m["content"] for m in generate_memories(n, seed=seed + 1)]
    return np.concatenate([embedder.embed(texts[i : i + 32]) for i in range(0, n, 32)])


def _overlap(a: Sequence[Any], b: Sequence[Any]) -> float:
    return len(set(a) & set(b)) / max(len(a), 1)


async def _timed(call: Callable[[], Awaitable[Any]]) -> tuple[float, Any]:
    t0 = time.perf_counter()
    out = await call()
    return (time.perf_counter() - t0) * 1000, out


async def _store_level(uri: str, session: str, queries: np.ndarray) -> dict[str, Any]:
    dim = queries.shape[1]
    exact = Neo4jVectorIndex(uri, dim, index_threshold=0)
    hnsw = Neo4jVectorIndex(uri, dim)
    await exact.open()
    await hnsw.open()
    flt = EpisodeFilter()
    out: dict[str, Any] = {}
    try:
        for limit in (10, 50):
            times: dict[str, list[float]] = {"exact": [], "index": []}
            overlaps = []
            for q in queries[:3]:  # warm caches and query plans
                await exact.search(session, q, flt, limit)
                await hnsw.search(session, q, flt, limit)
            for q in queries:
                te, want = await _timed(lambda q=q, n=limit: exact.search(session, q, flt, n))
                ti, got = await _timed(lambda q=q, n=limit: hnsw.search(session, q, flt, n))
                times["exact"].append(te)
                times["index"].append(ti)
                overlaps.append(_overlap([h.id for h in got][:10], [h.id for h in want][:10]))
            out[f"top{limit}"] = {
                "exact_ms": percentiles(times["exact"]),
                "index_ms": percentiles(times["index"]),
                "overlap_at_10_mean": round(float(np.mean(overlaps)), 4),
                "overlap_at_10_min": round(float(np.min(overlaps)), 4),
            }
    finally:
        await hnsw.close()
        await exact.close()
    return out


async def _recalls(base_url: str, session: str, queries: Sequence[str]) -> dict[str, Any]:
    async with httpx.AsyncClient(
        base_url=base_url, timeout=600.0, headers={"X-Session-ID": session}, trust_env=False
    ) as client:

        async def recall(q: str) -> list[str]:
            r = await client.post(
                f"{API}/episodes/recall", json={"query": q, "limit": 10, "learn": False}
            )
            if r.status_code != 200:
                raise RuntimeError(f"recall: {r.status_code} {r.text[:300]}")
            body = r.json()
            if body.get("degraded"):
                raise RuntimeError("recall degraded to keywords only")
            return [h["id"] for h in body["hits"]]

        # One warm-up per worker and then some: each worker warms its own caches.
        for q in queries[: 2 * WORKERS]:
            await recall(q)
        times, ids = [], []
        for q in queries[2 * WORKERS :]:
            ms, got = await _timed(lambda q=q: recall(q))
            times.append(ms)
            ids.append(got)
    return {"ms": percentiles(times), "ids": ids}


def _http(
    uri: str, session: str, queries: Sequence[str], threshold: int, tmp: Path
) -> dict[str, Any]:
    base = tmp / f"http-{session}-{threshold}"
    (base / "data").mkdir(parents=True)
    (base / "cwd").mkdir()
    env = {
        "WW_API_WORKERS": str(WORKERS),
        "WW_NEO4J_URI": uri,
        "WW_VECTOR_BACKEND": "neo4j",
        "WW_ENVIRONMENT": "test",
        "WW_NEO4J_VECTOR_INDEX_THRESHOLD": str(threshold),
    }
    server = Server(base / "data", base / "cwd", base / "server.log", extra_env=env)
    try:
        server.start()
        return asyncio.run(_recalls(server.base_url, session, queries))
    except BaseException:
        log(f"server failed; log tail:\n{server.log_tail()}")
        raise
    finally:
        server.stop()


def run_size(
    uri: str, size: int, args: argparse.Namespace, anchors: np.ndarray, tmp: Path
) -> dict[str, Any]:
    session = f"server-recall-{size}"
    embedder = load_embedder(Settings())
    query_texts = generate_queries(args.queries + 2 * WORKERS, seed=args.seed + size)
    query_vecs = embedder.embed(query_texts[: args.queries])
    log(f"{size}: filling the session through the stores")
    row: dict[str, Any] = {
        "fill": asyncio.run(
            _fill(uri, session, _episodes(session, size, args.seed), _vectors(anchors, size, size))
        )
    }
    log(f"  {row['fill']}")
    row["store"] = asyncio.run(_store_level(uri, session, query_vecs))
    log(f"  store level: {row['store']}")
    log(f"{size}: over HTTP, {WORKERS} workers, index")
    idx = _http(uri, session, query_texts, DEFAULT_INDEX_THRESHOLD, tmp)
    log(f"  index {idx['ms']}")
    log(f"{size}: over HTTP, {WORKERS} workers, exact scan")
    exact = _http(uri, session, query_texts, 0, tmp)
    log(f"  exact {exact['ms']}")
    overlaps = [_overlap(a, b) for a, b in zip(idx["ids"], exact["ids"], strict=True)]
    row["http"] = {
        "index_ms": idx["ms"],
        "exact_ms": exact["ms"],
        "overlap_at_10_mean": round(float(np.mean(overlaps)), 4),
        "overlap_at_10_min": round(float(np.min(overlaps)), 4),
    }
    return row


def _markdown(out: dict[str, Any]) -> str:
    info = out["info"]
    lines = [
        "# Server-tier recall: Neo4j exact scan against the per-session HNSW index",
        "",
        f"{info['cpus']} CPUs, Python {info['python']}, load average at the end "
        f"{' '.join(map(str, info['load_avg']))}; {info['queries']} queries per size, "
        f"{WORKERS} workers, index threshold {DEFAULT_INDEX_THRESHOLD}; vectors written "
        "through the stores (clustered around real embeddings of synthetic text).",
        "",
        "| memories | HTTP recall exact p50 / p95 ms | HTTP recall index p50 / p95 ms "
        "| HTTP overlap@10 | store top-50 exact / index p50 ms | store overlap@10 "
        "(mean / min) |",
        "|---:|---|---|---:|---|---|",
    ]
    for size, r in out["sizes"].items():
        h, s = r["http"], r["store"]["top50"]
        lines.append(
            f"| {size} | {h['exact_ms']['p50']} / {h['exact_ms']['p95']} "
            f"| {h['index_ms']['p50']} / {h['index_ms']['p95']} | {h['overlap_at_10_mean']} "
            f"| {s['exact_ms']['p50']} / {s['index_ms']['p50']} "
            f"| {s['overlap_at_10_mean']} / {s['overlap_at_10_min']} |"
        )
    return "\n".join(lines) + "\n"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--sizes", default="10000,100000")
    p.add_argument("--queries", type=int, default=50)
    p.add_argument("--anchors", type=int, default=2000)
    p.add_argument("--seed", type=int, default=11)
    p.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    args = p.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    anchors = embed_anchors(load_embedder(Settings()), args.anchors, args.seed)
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="ww-srecall-") as tmp:
        server = Neo4jProcess(launcher_jar(), Path(tmp) / "neo4j", page_cache_mb=PAGE_CACHE_MB)
        server.start()
        try:
            for size in sizes:
                results[str(size)] = run_size(server.uri, size, args, anchors, Path(tmp))
        finally:
            server.stop()
    out = {
        "sizes": results,
        "info": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "load_avg": [round(x, 2) for x in os.getloadavg()],
            "queries": args.queries,
            "anchors": args.anchors,
            "index_threshold": DEFAULT_INDEX_THRESHOLD,
            "workers": WORKERS,
        },
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "server_recall.json").write_text(json.dumps(out, indent=2) + "\n")
    (args.out / "server_recall.md").write_text(_markdown(out))
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
