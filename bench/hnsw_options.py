"""Neo4j vector index options on the server tier: how long a recall's vector search takes
through a session's HNSW index, and whether it still finds the exact top ten.

    python bench/hnsw_options.py [--size 100000] [--queries 40] [--out DIR]

Starts a test Neo4j from the harness launcher (tools/neo4j-harness) on a loopback port and,
for each variant of the index options, fills a session of its own through the stores as
bench/server_recall.py does (synthetic texts, the same vectors clustered around real
embeddings for every session): the write that reaches the threshold creates the session's
index with the variant's options and the rest of the vectors join it as they are written,
as in the service. Then every query runs the service's own search (top 50, a recall's
candidates: 200 asked of the index, rescored from the stored vectors) in every session, in
an order that rotates from query to query so that drift in the machine's load falls on all
variants alike.

For each variant: the vector upsert rate of its fill, search p50/p95, and the overlap@10 of
its hits with the exact top ten over the whole session (numpy). Writes
``DIR/hnsw_options.json`` and ``DIR/hnsw_options.md``. A benchmark, not a test.
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
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
    sys.path.insert(1, str(ROOT / "src"))

import numpy as np  # noqa: E402
from neo4j import AsyncGraphDatabase  # noqa: E402

from bench.bench_server import log  # noqa: E402
from bench.latency_load import percentiles  # noqa: E402
from bench.server_recall import (  # noqa: E402
    PAGE_CACHE_MB,
    _episodes,
    _fill,
    _vectors,
    embed_anchors,
)
from bench.synthetic import generate_queries  # noqa: E402
from tests.neo4j_launcher import Neo4jProcess, launcher_jar  # noqa: E402
from ww.config import Settings  # noqa: E402
from ww.embedding import load_embedder  # noqa: E402
from ww.models import EpisodeFilter  # noqa: E402
from ww.storage.neo4j import vector_ann  # noqa: E402
from ww.storage.neo4j.vectors import Neo4jVectorIndex  # noqa: E402

__all__ = ["main"]

# variant -> index options; the first is what the service created before int8, the
# second what it creates now for vectors of 256 dimensions and more.
VARIANTS = {
    "float, m 16": "`vector.quantization.enabled`: false, `vector.hnsw.m`: 16",
    "int8, m 16": "`vector.quantization.enabled`: true, `vector.hnsw.m`: 16",
    "float, m 8": "`vector.quantization.enabled`: false, `vector.hnsw.m`: 8",
    "int8, m 8": "`vector.quantization.enabled`: true, `vector.hnsw.m`: 8",
}
LIMIT = 50


def _fill_with(
    uri: str, session: str, options: str, episodes: list[Any], vectors: np.ndarray
) -> dict[str, float]:
    # The options are asked of the module when the index is created (the service's own
    # rule is restored after the fill).
    default = vector_ann.index_options
    vector_ann.index_options = lambda dimension: options
    try:
        return asyncio.run(_fill(uri, session, episodes, vectors))
    finally:
        vector_ann.index_options = default


async def _search(
    uri: str, positions: dict[str, dict[str, int]], vectors: np.ndarray, queries: np.ndarray
) -> dict[str, Any]:
    """Each variant's search p50/p95 and overlap@10; ``positions`` maps each variant to
    its memories' rows in ``vectors``."""
    names = list(positions)
    index = Neo4jVectorIndex(uri, vectors.shape[1])
    await index.open()
    flt = EpisodeFilter()
    times: dict[str, list[float]] = {n: [] for n in names}
    overlaps: dict[str, list[float]] = {n: [] for n in names}
    try:
        for rnd in range(2):  # the first round warms caches, plans and the JIT
            for qi, q in enumerate(queries):
                exact = set(np.argsort(-(vectors @ q))[:10].tolist())
                for j in range(len(names)):
                    name = names[(qi + j) % len(names)]
                    t0 = time.perf_counter()
                    hits = await index.search(_session(name), q, flt, LIMIT)
                    ms = (time.perf_counter() - t0) * 1000
                    if rnd == 0:
                        continue
                    top = {positions[name][str(h.id)] for h in hits[:10]}
                    times[name].append(ms)
                    overlaps[name].append(len(top & exact) / 10)
    finally:
        await index.close()
    return {
        n: {
            "search_ms": percentiles(times[n]),
            "overlap_at_10_mean": round(float(np.mean(overlaps[n])), 4),
            "overlap_at_10_min": round(float(np.min(overlaps[n])), 4),
        }
        for n in names
    }


async def _index_configs(uri: str) -> dict[str, dict[str, Any]]:
    """Each vector index's configuration as Neo4j reports it, by its label."""
    driver = AsyncGraphDatabase.driver(uri)
    try:
        records, _, _ = await driver.execute_query(
            "SHOW VECTOR INDEXES YIELD labelsOrTypes, options RETURN *"
        )
    finally:
        await driver.close()
    return {r["labelsOrTypes"][0]: r["options"]["indexConfig"] for r in records}


def _session(variant: str) -> str:
    return "hnsw-" + variant.replace(", ", "-").replace(" ", "")


def _markdown(out: dict[str, Any]) -> str:
    info = out["info"]
    lines = [
        "# Neo4j vector index options",
        "",
        f"{info['size']:,} vectors in each variant's session, {info['queries']} queries, "
        f"top {LIMIT} through the service's search; {info['cpus']} CPUs, "
        f"load average {info['load_avg']}.",
        "",
        "| variant | options | vectors/s written | search p50 ms | p95 ms | overlap@10 | min |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for name, r in out["variants"].items():
        lines.append(
            f"| {name} | `` {r['options']} `` | {r['fill']['vectors_per_s']} "
            f"| {r['search_ms']['p50']} | {r['search_ms']['p95']} | {r['overlap_at_10_mean']} "
            f"| {r['overlap_at_10_min']} |"
        )
    return "\n".join(lines) + "\n"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--size", type=int, default=100_000)
    p.add_argument("--queries", type=int, default=40)
    p.add_argument("--anchors", type=int, default=2000)
    p.add_argument("--seed", type=int, default=11)
    p.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    args = p.parse_args()
    embedder = load_embedder(Settings())
    anchors = embed_anchors(embedder, args.anchors, args.seed)
    queries = embedder.embed(generate_queries(args.queries, seed=args.seed + args.size))
    vectors = _vectors(anchors, args.size, args.size)
    variants: dict[str, Any] = {}
    positions: dict[str, dict[str, int]] = {}
    with tempfile.TemporaryDirectory(prefix="ww-hnsw-") as tmp:
        server = Neo4jProcess(launcher_jar(), Path(tmp) / "neo4j", page_cache_mb=PAGE_CACHE_MB)
        server.start()
        try:
            for name, options in VARIANTS.items():
                episodes = _episodes(_session(name), args.size, args.seed)
                positions[name] = {str(e.id): i for i, e in enumerate(episodes)}
                log(f"{name}: filling {args.size} through the stores")
                fill = _fill_with(server.uri, _session(name), options, episodes, vectors)
                variants[name] = {"options": options, "fill": fill}
                log(f"  {fill}")
            searched = asyncio.run(_search(server.uri, positions, vectors, queries))
            configs = asyncio.run(_index_configs(server.uri))
            names = Neo4jVectorIndex(server.uri, vectors.shape[1])  # for its labels, not opened
        finally:
            server.stop()
    for name, r in searched.items():
        variants[name].update(r, index_config=configs[names.session_label(_session(name))])
    out = {
        "variants": variants,
        "service_options": vector_ann.index_options(vectors.shape[1]),
        "info": {
            "size": args.size,
            "queries": args.queries,
            "limit": LIMIT,
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "load_avg": [round(x, 2) for x in os.getloadavg()],
        },
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "hnsw_options.json").write_text(json.dumps(out, indent=2) + "\n")
    (args.out / "hnsw_options.md").write_text(_markdown(out))
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
