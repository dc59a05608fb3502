"""Search latency of the Neo4j vector index (exact scan, and a session's own HNSW index)
against Qdrant Edge, same vectors.

    python bench/vector_scan.py [--sizes 1000,10000,30000] [--queries 50] [--out DIR]

Starts a test Neo4j from the harness launcher (tools/neo4j-harness, built by
``make test-server``) on a loopback port, fills one session per size in both indexes with
the same random unit vectors (384 dimensions, as the default model), then times top-50
searches with the same query vectors: Neo4j's exact Cypher scan, Neo4j through the session's
HNSW index (``index_threshold=1``: every size indexed, to find where the index starts to pay)
and Qdrant Edge's exact scan in the same run. Writes ``DIR/vector_scan.json`` and
``DIR/vector_scan.md``; prints the JSON. A benchmark, not a test.
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
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
    sys.path.insert(1, str(ROOT / "src"))

import numpy as np  # noqa: E402

from tests.neo4j_launcher import Neo4jProcess, launcher_jar  # noqa: E402
from ww.models import EpisodeFilter  # noqa: E402
from ww.storage.neo4j.vectors import Neo4jVectorIndex  # noqa: E402
from ww.storage.ports import VectorIndex, VectorItem  # noqa: E402
from ww.storage.qdrant.edge import QdrantEdgeIndex  # noqa: E402

__all__ = ["main"]

DIM = 384
LIMIT = 50


def _unit(rng: np.random.Generator, n: int) -> np.ndarray:
    v = rng.standard_normal((n, DIM)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def _payload(session: str, i: int) -> dict[str, Any]:
    # The shape ``episode_payload`` gives an episode, so the recall filter matches it.
    return {
        "session_id": session,
        "memory_type": "episode",
        "timestamp": 1_700_000_000_000_000 + i,
        "outcome": "neutral",
        "project": None,
        "speaker": None,
        "archived": 0,
        "metadata": {},
    }


async def _fill(index: VectorIndex, session: str, ids: list[UUID], vectors: np.ndarray) -> None:
    for start in range(0, len(vectors), 1000):
        items = [
            VectorItem(ids[start + i], v, _payload(session, start + i))
            for i, v in enumerate(vectors[start : start + 1000])
        ]
        await index.upsert(session, items)


async def _time(
    search: Callable[[np.ndarray], Awaitable[Any]], queries: np.ndarray
) -> dict[str, float]:
    times = []
    for q in queries:
        t0 = time.perf_counter()
        await search(q)
        times.append((time.perf_counter() - t0) * 1000)
    p50, p95 = np.percentile(times, [50, 95])
    return {"p50": round(float(p50), 2), "p95": round(float(p95), 2)}


async def run(sizes: list[int], n_queries: int, workdir: Path) -> dict[str, Any]:
    server = Neo4jProcess(launcher_jar(), workdir / "neo4j")
    server.start()
    results: dict[str, Any] = {}
    try:
        neo = Neo4jVectorIndex(server.uri, DIM, index_threshold=0)
        hnsw = Neo4jVectorIndex(server.uri, DIM, index_threshold=1)
        edge = QdrantEdgeIndex(workdir / "edge", DIM)
        await neo.open()
        await hnsw.open()
        await edge.open()
        rng = np.random.default_rng(7)
        flt = EpisodeFilter()
        for size in sizes:
            session = f"scan-{size}"
            vectors = _unit(rng, size)
            ids = [uuid4() for _ in range(size)]
            t0 = time.perf_counter()
            await _fill(hnsw, session, ids, vectors)
            neo_fill = time.perf_counter() - t0
            await _fill(edge, session, ids, vectors)
            queries = _unit(rng, n_queries)
            for q in queries[:5]:  # warm caches and query plans; both must find every hit
                got = await neo.search(session, q, flt, LIMIT)
                want = await edge.search(session, q, flt, LIMIT)
                await hnsw.search(session, q, flt, LIMIT)
                if [h.id for h in got] != [h.id for h in want] or len(got) != LIMIT:
                    raise SystemExit(f"{size}: Neo4j and Qdrant Edge disagree on a search")
            row = {
                "neo4j_ms": await _time(lambda q, s=session: neo.search(s, q, flt, LIMIT), queries),
                "neo4j_index_ms": await _time(
                    lambda q, s=session: hnsw.search(s, q, flt, LIMIT), queries
                ),
                "edge_exact_ms": await _time(
                    lambda q, s=session: edge.search(s, q, flt, LIMIT), queries
                ),
                "neo4j_upsert_per_s": round(size / neo_fill, 1),
            }
            results[str(size)] = row
            print(f"{size}: {row}", file=sys.stderr)
        await neo.close()
        await hnsw.close()
        await edge.close()
    finally:
        server.stop()
    return results


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--sizes", default="1000,10000,30000")
    p.add_argument("--queries", type=int, default=50)
    p.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    args = p.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    with tempfile.TemporaryDirectory(prefix="ww-vscan-") as tmp:
        results = asyncio.run(run(sizes, args.queries, Path(tmp)))
    info = {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "load_avg": [round(x, 2) for x in os.getloadavg()],
        "dimension": DIM,
        "limit": LIMIT,
        "queries": args.queries,
    }
    out = {"sizes": results, "info": info}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "vector_scan.json").write_text(json.dumps(out, indent=2) + "\n")
    lines = [
        "# Neo4j vector index (exact scan, HNSW index) against Qdrant Edge (exact)",
        "",
        f"{info['cpus']} CPUs, Python {info['python']}, load average at the end "
        f"{' '.join(map(str, info['load_avg']))}; top {LIMIT} of {DIM}-d unit vectors, "
        f"{args.queries} queries per size.",
        "",
        "| vectors in the session | Neo4j scan p50 / p95 ms | Neo4j index p50 / p95 ms "
        "| Qdrant Edge p50 / p95 ms | Neo4j upserts/s (indexed) |",
        "|---:|---|---|---|---:|",
    ]
    for size, row in results.items():
        n, h, e = row["neo4j_ms"], row["neo4j_index_ms"], row["edge_exact_ms"]
        lines.append(
            f"| {size} | {n['p50']} / {n['p95']} | {h['p50']} / {h['p95']} "
            f"| {e['p50']} / {e['p95']} | "
            f"{row['neo4j_upsert_per_s']} |"
        )
    (args.out / "vector_scan.md").write_text("\n".join(lines) + "\n")
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
