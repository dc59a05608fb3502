"""First recall in a fresh session, against the second, over HTTP (issue 17).

    python bench/latency_first.py [--sessions 30] [--per-session 245] [--batch 25]

A LongMemEval-style client writes a few hundred memories into a new session and then asks;
the first recall after those writes used to pay for what the session had not built yet.
For each of ``--sessions`` new sessions this writes ``--per-session`` synthetic memories
(:mod:`bench.synthetic`, ``--batch`` per ``POST /api/v1/episodes/batch``), then times two
recalls with distinct queries (``learn=false``, limit 10), one after the other. Reports the
p50 of each over the sessions and their ratio (target: first <= 1.5 x second).

bench/latency.py runs the same measurement per size (on the server it filled, in sessions
of their own) through :func:`first_recall_phase`; run alone, this module starts its own
server on an empty data directory. A benchmark, not a test: the data is synthetic, never a
LongMemEval file.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
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
from bench.latency_load import REQUEST_TIMEOUT_S, percentiles  # noqa: E402
from bench.synthetic import generate_memories, generate_queries  # noqa: E402

__all__ = ["FIRST_RATIO_TARGET", "first_recall_phase", "main", "recall_ms"]

FIRST_RATIO_TARGET = 1.5


async def recall_ms(client: httpx.AsyncClient, session: str, query: str) -> float:
    """Milliseconds of one recall (limit 10, ``learn`` off) in a session that has memories."""
    t0 = time.perf_counter()
    r = await client.post(
        f"{API}/episodes/recall",
        json={"query": query, "limit": 10, "learn": False},
        headers={"X-Session-ID": session},
    )
    elapsed = (time.perf_counter() - t0) * 1000
    if r.status_code != 200:
        raise RuntimeError(f"recall: {r.status_code} {r.text[:300]}")
    if not r.json()["hits"]:
        raise RuntimeError("recall in a filled session returned no hit")
    return elapsed


async def first_recall_phase(
    base_url: str,
    *,
    sessions: int,
    per_session: int,
    batch: int,
    seed: int,
    prefix: str = "first",
) -> dict[str, Any]:
    """Per new session: write ``per_session`` memories, then the first and second recall.

    Sessions are named ``{prefix}-{i}``; memories and queries are distinct across them.
    """
    memories = generate_memories(sessions * per_session, seed=seed)
    queries = generate_queries(2 * sessions, seed=seed + 1)
    first: list[float] = []
    second: list[float] = []
    async with httpx.AsyncClient(
        base_url=base_url, timeout=REQUEST_TIMEOUT_S, trust_env=False
    ) as client:
        for i in range(sessions):
            session = f"{prefix}-{i}"
            mine = memories[i * per_session : (i + 1) * per_session]
            for start in range(0, len(mine), batch):
                r = await client.post(
                    f"{API}/episodes/batch",
                    json={"episodes": mine[start : start + batch]},
                    headers={"X-Session-ID": session},
                )
                if r.status_code != 201:
                    raise RuntimeError(f"batch ingest: {r.status_code} {r.text[:300]}")
            first.append(await recall_ms(client, session, queries[2 * i]))
            second.append(await recall_ms(client, session, queries[2 * i + 1]))
    p_first, p_second = percentiles(first), percentiles(second)
    ratio = round(p_first["p50"] / p_second["p50"], 2)
    return {
        "first_recall_in_session_ms": p_first["p50"],
        "second_recall_in_session_ms": p_second["p50"],
        "first_recall_ratio": ratio,
        "first_recall_in_session": {
            "sessions": sessions,
            "memories_per_session": per_session,
            "batch": batch,
            "first": p_first,
            "second": p_second,
            # Each session's own first/second, so machine load that drifts between
            # sessions weighs on both recalls of a pair alike.
            "paired_ratio_p50": round(
                statistics.median(a / b for a, b in zip(first, second, strict=True)), 2
            ),
            "target_ratio": FIRST_RATIO_TARGET,
            "met": ratio <= FIRST_RATIO_TARGET,
        },
    }


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--sessions", type=int, default=30, help="new sessions (one p50 sample each)")
    p.add_argument("--per-session", type=int, default=245, help="memories written per session")
    p.add_argument("--batch", type=int, default=25, help="memories per batch request")
    p.add_argument("--seed", type=int, default=20240301)
    p.add_argument("--src", type=Path, default=ROOT / "src", help="the ww package to serve")
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="ww-first-") as tmp:
        base = Path(tmp)
        (base / "cwd").mkdir()
        server = Server(base / "data", base / "cwd", base / "server.log", src=args.src)
        try:
            server.start()
            log(f"server up on :{server.port}; {args.sessions} sessions of {args.per_session}")
            out = asyncio.run(
                first_recall_phase(
                    server.base_url,
                    sessions=args.sessions,
                    per_session=args.per_session,
                    batch=args.batch,
                    seed=args.seed,
                )
            )
        finally:
            server.stop()
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
