"""Latency and throughput of the REST API on the embedded tier, against the bare embedder.

    python bench/latency.py [--sizes 10000,100000] [--out bench/results]
                            [--batch 500] [--clients 2] [--c1-queries 200] [--c8-queries 400]
                            [--embed-sample 2000] [--seed 20240101]

For each size N the benchmark:

1. starts ``python -m ww.api.server`` on 127.0.0.1 (a free port) with a fresh temporary
   ``WW_DATA_DIR`` (one data directory per size, so sizes do not share a vector shard), run
   from an empty working directory so no ``.env`` applies;
2. times the bare embedder in this process (``load_embedder(Settings())``) on a seeded
   sample of the same texts while the server is idle - half of the sample before ingest and
   half after, so drifting load from other processes weighs on both sides: ``raw_embed_per_s``;
3. ingests N synthetic memories (:mod:`bench.synthetic`) into session ``bench-N`` through
   ``POST /api/v1/episodes/batch`` (``--batch`` per request, ``--clients`` requests in
   flight): ``ingest_per_s`` and ``ingest_ratio = ingest_per_s / raw_embed_per_s``; then the
   model's best batched rate on the same sample (batch 32, sorted by length):
   ``raw_embed_batched_per_s`` and ``ingest_ratio_batched`` (issue 17's target, >= 0.85);
4. times one query embedding alone in this process (median over ``--query-sample``
   distinct queries): ``embed_query_ms``;
5. measures recall (``learn=false``, limit 10, distinct seeded queries so the embedding
   cache never hits) at concurrency 1 and 8 - "before optimise". When N reaches the
   maintenance indexing threshold (20,000 unindexed vectors), a tiny PATCH to a keep-alive
   episode in another session every few seconds keeps writes from going quiet during this
   phase, so the HNSW build cannot start in the middle of it;
6. for such N, stops the keep-alive, waits for the server log line "optimising the vector
   index" (maintenance runs every 30 s once writes have been quiet for 10 s), sends one
   probe recall - it queues behind the build on the vector thread, so its return marks the
   end of the build - and measures recall again: "after optimise". Below the threshold
   the index is never built (search stays an exact scan) and that phase is skipped;
   After recall, ``--long-count`` memories of ``--long-chars`` characters go into their own
   session through the same endpoint: ``long_ingest_per_s`` and ``long_ingest_chars_per_s``,
   ``long_parts_per_memory`` (further vectors of each: its windows after the first) and
   ``long_cost_per_char_ratio`` (a character of them against one of the N short memories).
7. reads the server's peak RSS (``VmHWM`` in ``/proc/<pid>/status``), stops it (SIGTERM),
   starts it again on the same data directory and times until ``/api/v1/health`` is 200:
   ``startup_s``.

Issue 17's figures, per size, on the filled server before the restart:
``recall_per_s_c8`` (the final c=8 phase's recalls over its wall time);
``embed_only_per_s_c8`` (the same number of queries from the same generator embedded at
concurrency 8 through ``EmbeddingService``, the server's embedding front, in this process
- the server has no endpoint that only embeds; :mod:`bench.latency_floors`);
``http_floor_raw_ms`` (``GET /api/v1/health`` over a bare ``http.client`` keep-alive
connection); and ``first_recall_in_session_ms`` / ``second_recall_in_session_ms`` with
their ratio: ``--first-sessions`` new sessions, each written ``--first-per-session``
synthetic memories and then recalled twice (:mod:`bench.latency_first`). The Markdown
report judges each issue-17 target against these (:mod:`bench.latency_targets`).

``recall_ms`` is the final state (after optimise when it happened); both phases are kept
under ``recall_phases``. ``overhead_p50_ms = recall_ms.c1.p50 - embed_query_ms``: what the
service adds to a lone query beyond embedding it (HTTP, both index searches, fusion and
JSON). ``http_floor_ms`` is the c=1 p50 of a 404 ``GET /api/v1/episodes/{id}``, the
client + framework cost every request pays. Writes ``DIR/latency.json`` and
``DIR/latency.md`` and prints the table. This is a benchmark, not a test.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script: make `bench` and `ww` importable
    sys.path.insert(0, str(ROOT))
    sys.path.insert(1, str(ROOT / "src"))

import httpx  # noqa: E402

from bench.bench_server import API, Server, log  # noqa: E402
from bench.latency_embed import long_ingest, long_memories, raw_embed_batched_rate  # noqa: E402
from bench.latency_first import first_recall_phase  # noqa: E402
from bench.latency_floors import embed_only_per_s_c8, http_floor_raw  # noqa: E402
from bench.latency_load import (  # noqa: E402
    INDEXING_THRESHOLD,
    KEEPALIVE_SESSION,
    OPTIMISE_LOG,
    REQUEST_TIMEOUT_S,
    QueryPool,
    embed_query_ms,
    http_floor,
    index_state,
    ingest,
    keepalive,
    optimise_events,
    raw_embed_rate,
    recall_phase,
    wait_for_optimise,
)
from bench.latency_report import info, markdown, table  # noqa: E402
from bench.synthetic import generate_memories, generate_queries  # noqa: E402
from ww.config import Settings  # noqa: E402
from ww.embedding import OnnxEmbedder, load_embedder  # noqa: E402

__all__ = ["main", "run"]

DEFAULT_OUT = ROOT / "bench" / "results"


# -- one size ---------------------------------------------------------------------------------
def run_size(
    size: int, args: argparse.Namespace, embedder: OnnxEmbedder, tmp_root: Path
) -> dict[str, Any]:
    session = f"bench-{size}"
    base = tmp_root / f"size-{size}"
    data_dir, workdir = base / "data", base / "cwd"
    data_dir.mkdir(parents=True)
    workdir.mkdir()
    server = Server(data_dir, workdir, base / "server.log")
    result: dict[str, Any] = {"size": size, "session": session}

    log(f"size {size}: generating memories (seed {args.seed})")
    memories = generate_memories(size, seed=args.seed)
    # Queries come from their own generator; distinct across every phase and size.
    queries = generate_queries(
        2 * (10 + args.c1_queries + args.c8_queries) + args.query_sample + 1,
        seed=args.seed + 1_000_003 + size,
    )
    embed_queries, pool = queries[: args.query_sample], QueryPool(queries[args.query_sample :])
    sample = random.Random(args.seed + size).sample(
        [m["content"] for m in memories], min(args.embed_sample, size)
    )
    try:
        result["startup_empty_s"] = round(server.start(), 2)
        log(f"size {size}: server up on :{server.port} (pid {server.pid})")

        # Half the sample before ingest and half after, so load from other processes that
        # drifts during the run weighs on both sides of the ratio alike.
        half = len(sample) // 2
        log(f"size {size}: raw embedder on {half} texts (first half)")
        t_before = half / raw_embed_rate(embedder, sample[:half])
        log(f"  raw embed {half / t_before:.1f}/s")

        log(f"size {size}: ingest with {args.clients} clients x {args.batch} per batch")
        secs, _ = asyncio.run(ingest(server.base_url, session, memories, args.batch, args.clients))
        result["ingest_s"] = round(secs, 1)
        result["ingest_per_s"] = round(size / secs, 1)
        result["ingest_chars_per_s"] = round(sum(len(m["content"]) for m in memories) / secs)
        result["loadavg_ingest_end"] = [round(x, 2) for x in os.getloadavg()]
        log(f"  ingest {result['ingest_per_s']}/s")

        rest = len(sample) - half
        log(f"size {size}: raw embedder on {rest} texts (second half)")
        t_after = rest / raw_embed_rate(embedder, sample[half:])
        result["raw_embed_per_s_before_after"] = [
            round(half / t_before, 1),
            round(rest / t_after, 1),
        ]
        result["raw_embed_per_s"] = round(len(sample) / (t_before + t_after), 1)
        result["ingest_ratio"] = round(result["ingest_per_s"] / result["raw_embed_per_s"], 3)
        log(f"  raw embed {result['raw_embed_per_s']}/s; ratio {result['ingest_ratio']}")
        # Issue 17: the model's best batched rate (batch 32, sorted by length), same run.
        batched = raw_embed_batched_rate(embedder, sample)
        result["raw_embed_batched_per_s"] = round(batched, 1)
        result["ingest_ratio_batched"] = round(result["ingest_per_s"] / batched, 3)
        log(f"  raw batched {batched:.1f}/s; ratio {result['ingest_ratio_batched']}")

        result["embed_query"] = embed_query_ms(embedder, embed_queries)
        result["embed_query_ms"] = result["embed_query"]["p50"]
        log(f"  embed one query: {result['embed_query_ms']} ms (median)")

        result.update(asyncio.run(measure_recall(server, session, size, pool, args)))
        if args.long_count:
            log(f"size {size}: {args.long_count} long memories of {args.long_chars} characters")
            longs = long_memories(memories, args.long_count, args.long_chars)
            result.update(
                long_ingest(
                    server, f"{session}-long", longs, embedder, result["ingest_chars_per_s"]
                )
            )
        result.update(measure_floors_and_first(server, size, embedder, args))
        mem = server.memory_mb()
        result["rss_mb"] = mem.get("VmHWM")
        result["rss_now_mb"] = mem.get("VmRSS")
        server.stop()

        log(f"size {size}: restart on the same data directory")
        result["startup_s"] = round(server.start(), 2)
        log(f"  startup {result['startup_s']} s")
        result.update(asyncio.run(after_restart(server, session)))
        server.stop()
        result["index"] = index_state(data_dir, embedder.dimension)
        result["optimise_log_lines"] = [
            ln for ln in server.log_text().splitlines() if "optimis" in ln or "reconciled" in ln
        ][:10]
    except BaseException:
        log(f"size {size} failed; server log tail:\n{server.log_tail()}")
        raise
    finally:
        server.stop()
    return result


async def measure_recall(
    server: Server, session: str, size: int, pool: QueryPool, args: argparse.Namespace
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    builds = size >= INDEXING_THRESHOLD
    async with httpx.AsyncClient(
        base_url=server.base_url,
        timeout=REQUEST_TIMEOUT_S,
        headers={"X-Session-ID": session},
        trust_env=False,
        limits=httpx.Limits(max_connections=16, max_keepalive_connections=16),
    ) as client:
        out["http_floor_ms"] = (await http_floor(client))["p50"]
        stop = asyncio.Event()
        ka_task = None
        if builds:
            r = await client.post(
                f"{API}/episodes",
                json={"content": "keep-alive episode for the latency benchmark"},
                headers={"X-Session-ID": KEEPALIVE_SESSION},
            )
            r.raise_for_status()
            ka_task = asyncio.create_task(keepalive(client, r.json()["id"], stop))
        # Maintenance may already have built the index while ingest was running: it only
        # sees completed writes, and one batch embeds for longer than its quiet period.
        seen = server.log_text().count(OPTIMISE_LOG)
        out["optimise_during_ingest"] = optimise_events(server)
        log(f"size {size}: recall before optimise ({seen} build(s) during ingest)")
        before = await recall_phase(client, pool, args.c1_queries, args.c8_queries)
        stop.set()
        if ka_task is not None:
            before["keepalive_patches"] = await ka_task
        log(f"  before: c1 {before['c1']} c8 {before['c8']}")
        phases: dict[str, Any] = {"before_optimise": before, "after_optimise": None}
        if builds:
            log(f"size {size}: waiting for the maintenance HNSW build")
            waited = await wait_for_optimise(server, client, session, seen)
            out["optimise_wait_s"] = None if waited is None else round(waited, 1)
            if waited is None:
                phases["after_optimise_skipped"] = (
                    "no build after ingest: the unindexed remainder (see `index`) is below "
                    f"the maintenance indexing_threshold {INDEXING_THRESHOLD}"
                )
                log("  no build came; the before phase is the final state")
            else:
                log(f"  optimised after {out['optimise_wait_s']} s")
                after = await recall_phase(client, pool, args.c1_queries, args.c8_queries)
                log(f"  after: c1 {after['c1']} c8 {after['c8']}")
                phases["after_optimise"] = after
        else:
            phases["after_optimise_skipped"] = (
                f"{size} < maintenance indexing_threshold {INDEXING_THRESHOLD}: the HNSW index "
                "is never built, search stays an exact scan"
            )
        final = phases["after_optimise"] or before
        out["recall_phases"] = phases
        out["recall_ms"] = {"c1": final["c1"], "c8": final["c8"]}
        out["recall_per_s_c8"] = final["c8_per_s"]
    return out


def measure_floors_and_first(
    server: Server, size: int, embedder: OnnxEmbedder, args: argparse.Namespace
) -> dict[str, Any]:
    """Issue 17's extra figures for one size, on the filled server: the bare HTTP floor,
    embedding alone at c=8 (same number of queries as the c=8 recalls, same generator) and
    the first against the second recall in fresh sessions of their own."""
    out: dict[str, Any] = {"http_floor_raw_ms": http_floor_raw(server.base_url)["p50"]}
    queries = generate_queries(args.c8_queries, seed=args.seed + 2_000_003 + size)
    embed_c8 = embed_only_per_s_c8(embedder, queries)
    out["embed_only_per_s_c8"] = embed_c8["per_s"]
    out["embed_only_c8"] = embed_c8
    log(f"  embed only at c=8: {embed_c8['per_s']}/s")
    if args.first_sessions > 0:
        log(f"size {size}: first vs second recall in {args.first_sessions} new sessions")
        first = asyncio.run(
            first_recall_phase(
                server.base_url,
                sessions=args.first_sessions,
                per_session=args.first_per_session,
                batch=args.first_batch,
                seed=args.seed + 3_000_017 + size,
                prefix=f"first-{size}",
            )
        )
        log(
            f"  first {first['first_recall_in_session_ms']} ms, second "
            f"{first['second_recall_in_session_ms']} ms ({first['first_recall_ratio']}x)"
        )
        out.update(first)
    return out


async def after_restart(server: Server, session: str) -> dict[str, Any]:
    async with httpx.AsyncClient(
        base_url=server.base_url, timeout=REQUEST_TIMEOUT_S, trust_env=False
    ) as client:
        t0 = time.perf_counter()
        r = await client.post(
            f"{API}/episodes/recall",
            json={"query": "what failed after the release", "limit": 10, "learn": False},
            headers={"X-Session-ID": session},
        )
        first = (time.perf_counter() - t0) * 1000
        r.raise_for_status()
        stats = (await client.get(f"{API}/sessions/{session}")).json()
    return {
        "first_recall_after_restart_ms": round(first, 1),
        "stored_episodes": stats.get("episodes"),
        "pending_after_restart": stats.get("pending"),
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    sizes = [int(s) for s in str(args.sizes).split(",") if s.strip()]
    embedder = load_embedder(Settings())
    report: dict[str, Any] = {
        "info": info(embedder),
        "command": " ".join(["python", "bench/latency.py", *sys.argv[1:]]),
        "params": {
            "batch": args.batch,
            "clients": args.clients,
            "c1_queries": args.c1_queries,
            "c8_queries": args.c8_queries,
            "embed_sample": args.embed_sample,
            "query_sample": args.query_sample,
            "seed": args.seed,
            "first_sessions": args.first_sessions,
            "first_per_session": args.first_per_session,
            "first_batch": args.first_batch,
        },
        "sizes": {},
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    tmp_root = Path(tempfile.mkdtemp(prefix="ww-latency-"))
    try:
        for size in sizes:
            r = run_size(size, args, embedder, tmp_root)
            r["overhead_p50_ms"] = round(r["recall_ms"]["c1"]["p50"] - r["embed_query_ms"], 2)
            report["sizes"][str(size)] = r
            # Written after every size, so a long run leaves partial results behind.
            (out / "latency.json").write_text(json.dumps(report, indent=2) + "\n")
            (out / "latency.md").write_text(markdown(report))
    finally:
        if args.keep_data:
            log(f"data kept in {tmp_root}")
        else:
            shutil.rmtree(tmp_root, ignore_errors=True)
    return report


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--sizes", default="10000,100000", help="comma-separated memory counts")
    p.add_argument("--out", default=str(DEFAULT_OUT), help="folder for latency.json/.md")
    p.add_argument("--batch", type=int, default=500, help="episodes per batch request")
    p.add_argument("--clients", type=int, default=2, help="batch requests in flight")
    p.add_argument("--c1-queries", type=int, default=200, help="recalls at concurrency 1")
    p.add_argument("--c8-queries", type=int, default=400, help="recalls at concurrency 8")
    p.add_argument("--embed-sample", type=int, default=2000, help="texts for raw embed rate")
    p.add_argument("--query-sample", type=int, default=100, help="queries for embed_query_ms")
    p.add_argument("--long-count", type=int, default=32, help="long memories (0: skip)")
    p.add_argument("--long-chars", type=int, default=8000, help="characters per long memory")
    p.add_argument("--seed", type=int, default=20240101)
    p.add_argument("--keep-data", action="store_true", help="keep the temporary data dirs")
    p.add_argument(
        "--first-sessions",
        type=int,
        default=30,
        help="new sessions for the first-vs-second recall figure (0 skips it)",
    )
    p.add_argument("--first-per-session", type=int, default=245, help="memories per session")
    p.add_argument("--first-batch", type=int, default=25, help="memories per batch request")
    args = p.parse_args(argv)
    if not re.fullmatch(r"\d+(,\d+)*", str(args.sizes)):
        p.error("--sizes takes comma-separated integers, e.g. 10000,100000")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    report = run(args)
    print(table(report))
    print(f"\nwrote {Path(args.out) / 'latency.json'} and {Path(args.out) / 'latency.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
