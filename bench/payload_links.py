"""Qdrant Edge's HNSW build and search with graph links for every indexed payload field
against links for ``GRAPH_FIELDS`` only (issue 17, "HNSW build time at 1M").

    python bench/payload_links.py [--size 100000] [--queries 150] [--out bench/results]
                                  [--rules every_field,graph_fields] [--layouts one,ten]
                                  [--name payload_links]

For each layout (one session of ``--size`` points, ten sessions of a tenth each) and each
rule (``every_field``: each indexed field's values linked, as before; ``graph_fields``: the
shipped rule, ``ww.storage.qdrant.edge``), fills a Qdrant Edge shard with the same points,
builds its graph (``optimize`` until nothing is left) and times it, then searches top 50
with World Weaver's own filters (``QdrantFilters.search``) for a session, and for a speaker
who has a tenth of the session: ``every_field`` as World Weaver searched before (no ACORN),
``graph_fields`` with ACORN where the shipped rule asks for it. Each search's top
10 and top 50 are compared with an exact search of the same filter.

Vectors: the real model's vectors of ``bench.synthetic`` texts (``bench.scale``'s pool,
cached in the temp folder), point ``i`` = pool vector ``i % pool`` plus seeded Gaussian
noise of norm ~0.35, so copies of one text spread apart. Writes ``DIR/payload_links.json``
and ``.md`` (``--name`` renames them); prints the JSON. A benchmark, not a test.
"""

from __future__ import annotations

import argparse
import json
import shutil
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
import numpy.typing as npt  # noqa: E402
import qdrant_edge as qe  # noqa: E402

from bench.bench_server import log  # noqa: E402
from bench.run_info import versions  # noqa: E402
from bench.scale import pool_vectors  # noqa: E402
from bench.synthetic import generate_memories  # noqa: E402
from ww.models import EpisodeFilter  # noqa: E402
from ww.storage.qdrant import edge  # noqa: E402
from ww.storage.vector_base import PAYLOAD_INDEXES, Search  # noqa: E402

__all__ = ["main"]

DEFAULT_OUT = ROOT / "bench" / "results"
NOISE = 0.35
T0_MICROS = 1_700_000_000_000_000
EXACT = qe.SearchParams(exact=True)


def rule_params(rule: str) -> list[tuple[str, Any]]:
    if rule == "graph_fields":
        return list(edge._PAYLOAD_INDEXES)
    return [
        (f, qe.PayloadSchemaType.Integer if integer else qe.PayloadSchemaType.Keyword)
        for f, integer in PAYLOAD_INDEXES
    ]


def points(pool: npt.NDArray[np.float32], size: int) -> npt.NDArray[np.float32]:
    rng = np.random.default_rng(7)
    idx = np.arange(size)
    noise = rng.standard_normal((size, pool.shape[1])).astype(np.float32)
    v = pool[idx % len(pool)] + NOISE * noise / np.sqrt(pool.shape[1])
    out: npt.NDArray[np.float32] = v / np.linalg.norm(v, axis=1, keepdims=True)
    return out


def payload(i: int, sessions: int) -> dict[str, Any]:
    return {
        "session_id": f"s{i % sessions}",
        "memory_type": "episode",
        "timestamp": T0_MICROS + i * 1_000_000,
        "outcome": "neutral",
        "project": None,
        "speaker": "alice" if (i // sessions) % 10 == 0 else "bob",
        "archived": 0,
        "metadata": {},
    }


def run_one(
    vectors: npt.NDArray[np.float32], sessions: int, rule: str, queries: int, tmp: Path
) -> dict[str, Any]:
    path = tmp / f"{rule}-{sessions}"
    shutil.rmtree(path, ignore_errors=True)
    config = qe.EdgeConfig(
        vectors=qe.EdgeVectorParams(size=vectors.shape[1], distance=qe.Distance.Cosine)
    )
    shard = qe.EdgeShard.create(str(path), config)
    for field, index in rule_params(rule):
        shard.update(qe.UpdateOperation.create_field_index(field, index))
    for start in range(0, len(vectors), 2000):
        shard.update(
            qe.UpdateOperation.upsert_points(
                [
                    qe.Point(id=i + 1, vector=vectors[i].tolist(), payload=payload(i, sessions))
                    for i in range(start, min(len(vectors), start + 2000))
                ]
            )
        )
    t0 = time.perf_counter()
    while shard.optimize():
        pass
    build_s = time.perf_counter() - t0
    rng = np.random.default_rng(11)
    out: dict[str, Any] = {"build_s": round(build_s, 1)}
    for name, flt in (("session", EpisodeFilter()), ("speaker", EpisodeFilter(speaker="alice"))):
        ms, r10, r50 = [], [], []
        for q in rng.choice(len(vectors), queries, replace=False):
            dim = vectors.shape[1]
            noisy = vectors[q] + NOISE * rng.standard_normal((dim,), dtype=np.float32) / np.sqrt(
                dim
            )
            qv: npt.NDArray[np.float32] = noisy / np.linalg.norm(noisy)
            search = Search(f"s{q % sessions}", qv, flt, None)
            query, fl = qe.Query.Nearest(qv.tolist()), edge._F.search(search)
            # The rule before asked for no ACORN; the shipped one asks where its filter needs it.
            acorn = rule == "graph_fields" and search.needs_acorn
            params = edge._ACORN if acorn else None
            t1 = time.perf_counter()
            got = shard.query(qe.QueryRequest(limit=50, query=query, filter=fl, params=params))
            ms.append((time.perf_counter() - t1) * 1000)
            exact = shard.query(qe.QueryRequest(limit=50, query=query, filter=fl, params=EXACT))
            a, b = [h.id for h in got], [h.id for h in exact]
            r10.append(len(set(a[:10]) & set(b[:10])) / max(1, len(b[:10])))
            r50.append(len(set(a) & set(b)) / max(1, len(b)))
        out[name] = {
            "p50_ms": round(float(np.median(ms)), 2),
            "p95_ms": round(float(np.percentile(ms, 95)), 2),
            "overlap_at_10": round(float(np.mean(r10)), 4),
            "overlap_at_50": round(float(np.mean(r50)), 4),
        }
    shard.close()
    shutil.rmtree(path, ignore_errors=True)
    return out


def report(result: dict[str, Any]) -> str:
    lines = [
        "# Qdrant Edge: graph links per payload field",
        "",
        f"{result['info']['size']} points, {result['info']['queries']} queries per row; "
        "overlap = share of the exact search's top 10 / top 50 that the graph search found.",
        "",
        "| layout | rule | build s | session p50 / p95 ms | session overlap@10 / @50 "
        "| speaker p50 / p95 ms | speaker overlap@10 / @50 |",
        "|---|---|---:|---|---|---|---|",
    ]
    for layout, rules in result["layouts"].items():
        for rule, r in rules.items():
            s, p = r["session"], r["speaker"]
            lines.append(
                f"| {layout} | {rule} | {r['build_s']} | {s['p50_ms']} / {s['p95_ms']} | "
                f"{s['overlap_at_10']} / {s['overlap_at_50']} | {p['p50_ms']} / {p['p95_ms']} | "
                f"{p['overlap_at_10']} / {p['overlap_at_50']} |"
            )
    lines += ["", f"Run: `{result['info']['command']}`", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=100_000)
    ap.add_argument("--queries", type=int, default=150)
    ap.add_argument("--pool", type=int, default=20_000)
    ap.add_argument("--seed", type=int, default=20240101)
    ap.add_argument(
        "--rules", default="every_field,graph_fields", help="comma-separated rules to run"
    )
    ap.add_argument(
        "--layouts", default="one,ten", help="comma-separated: one session, ten sessions"
    )
    ap.add_argument("--name", default="payload_links", help="report file name (no suffix)")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = ap.parse_args(argv)
    bodies = generate_memories(args.pool, seed=args.seed)
    cache = Path(tempfile.gettempdir()) / f"ww-scale-pool-{args.pool}-{args.seed}.npy"
    pool, _, model_id = pool_vectors([b["content"] for b in bodies], cache)
    result: dict[str, Any] = {
        "layouts": {},
        "info": {
            "size": args.size,
            "queries": args.queries,
            "model": model_id,
            "command": "python bench/payload_links.py " + " ".join(argv or sys.argv[1:]),
            **versions(),
        },
    }
    vectors = points(pool, args.size)
    with tempfile.TemporaryDirectory(prefix="ww-links-") as tmp:
        for key, layout, sessions in (("one", "one session", 1), ("ten", "ten sessions", 10)):
            if key not in args.layouts.split(","):
                continue
            rows: dict[str, Any] = {}
            for rule in args.rules.split(","):
                log(f"{layout}: {rule}")
                rows[rule] = run_one(vectors, sessions, rule, args.queries, Path(tmp))
                log(f"  {rows[rule]}")
            result["layouts"][layout] = rows
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"{args.name}.json").write_text(json.dumps(result, indent=2) + "\n")
    (args.out / f"{args.name}.md").write_text(report(result))
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
