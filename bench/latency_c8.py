"""Where recall time goes at concurrency 8 on the embedded tier, in process (issue 17).

    python bench/latency_c8.py [--size 10000] [--queries 160]

Ingests ``--size`` memories with the stub embedder of bench/latency_profile.py, reopens the
data directory with the real one and runs the same distinct queries through
``recall_episodes`` at concurrency 1 and 8. For each it reports recalls per second and the
process's CPU seconds per recall (``time.process_time``, every thread), and for c=8 the
busy time of each stage summed over the recalls (stages overlap, so a stage whose summed
time grows far beyond its c=1 time is one that waits for the GIL or a shared thread). Two
bounds follow: if recalls ran on every core in parallel, ``cores / cpu_per_recall``; if
everything but the model ran under one lock, about ``1 / (cpu_per_recall - model share)``.
A diagnostic helper, not a test; ratios within one run are what it is for.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import os
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
    sys.path.insert(1, str(ROOT / "src"))

from bench.latency_profile import ingest_stub  # noqa: E402
from bench.synthetic import generate_queries  # noqa: E402
from ww.config import Settings  # noqa: E402
from ww.engine import MemoryEngine, build_engine  # noqa: E402
from ww.storage.guarded import unwrap  # noqa: E402

__all__ = ["main"]

SESSION = "profile"  # the session bench/latency_profile.py's ingest_stub fills


def _timed_stages(engine: MemoryEngine, busy: dict[str, float]) -> None:
    """Wrap each awaited recall stage so its wall time adds up in ``busy``."""
    targets: list[tuple[Any, str, str]] = [
        (unwrap(engine.embedder), "embed_one", "embed query"),
        (unwrap(engine.records), "keyword_search", "keyword search"),
        (engine, "_dense", "dense search"),
        (unwrap(engine.records), "candidate_rows", "candidate rows"),
        (engine.recall_learning, "features", "learned features"),
        (engine, "_within", "within search"),
        (unwrap(engine.records), "neighbours", "neighbours"),
        (unwrap(engine.records), "get_episodes", "fetch hits"),
    ]
    for obj, name, label in targets:
        fn: Callable[..., Awaitable[Any]] = getattr(obj, name)

        @functools.wraps(fn)
        async def timed(*a: Any, _fn: Any = fn, _label: str = label, **k: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return await _fn(*a, **k)
            finally:
                busy[_label] = busy.get(_label, 0.0) + time.perf_counter() - t0

        setattr(obj, name, timed)


async def _run(engine: MemoryEngine, queries: Sequence[str], concurrency: int) -> dict[str, Any]:
    it = iter(queries)

    async def worker() -> None:
        for q in it:
            await engine.recall_episodes(SESSION, q, learn=False)

    wall0, cpu0 = time.perf_counter(), time.process_time()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    return {
        "per_s": round(len(queries) / wall, 1),
        "cpu_ms_per_recall": round(1000 * cpu / len(queries), 2),
        "cpu_cores_used": round(cpu / wall, 2),
    }


async def profile(settings: Settings, queries: int) -> dict[str, Any]:
    engine = build_engine(settings)
    await engine.open()
    try:
        qs = generate_queries(3 * queries + 20, seed=4242)
        for q in qs[:20]:
            await engine.recall_episodes(SESSION, q, learn=False)
        t0, cpu0 = time.perf_counter(), time.process_time()
        for q in qs[20 : 20 + queries]:
            await engine.embedder.embed_one(q + " (embed only)")
        embed_cpu_ms = 1000 * (time.process_time() - cpu0) / queries
        embed_wall_ms = 1000 * (time.perf_counter() - t0) / queries
        busy: dict[str, float] = {}
        _timed_stages(engine, busy)
        c1 = await _run(engine, qs[20 + queries : 20 + 2 * queries], 1)
        stages1 = {k: round(1000 * v / queries, 2) for k, v in busy.items()}
        busy.clear()
        c8 = await _run(engine, qs[20 + 2 * queries :], 8)
        stages8 = {k: round(1000 * v / queries, 2) for k, v in busy.items()}
    finally:
        await engine.close()
    return {
        "cores": os.cpu_count(),
        "loadavg": [round(x, 1) for x in os.getloadavg()],
        "embed_only": {
            "wall_ms": round(embed_wall_ms, 2),
            "cpu_ms": round(embed_cpu_ms, 2),
        },
        "c1": c1,
        "c8": c8,
        "stage_ms_per_recall_c1": stages1,
        "stage_ms_per_recall_c8": stages8,
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--size", type=int, default=10_000)
    p.add_argument("--queries", type=int, default=160)
    args = p.parse_args()
    with tempfile.TemporaryDirectory(prefix="ww-c8-") as tmp:
        settings = Settings(data_dir=Path(tmp))
        asyncio.run(ingest_stub(settings, args.size, False))
        out = asyncio.run(profile(settings, args.queries))
    for key, value in out.items():
        print(f"{key}: {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
