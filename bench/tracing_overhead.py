"""What observability costs a recall: p50 of ``recall_episodes`` in one run, in turn

- ``bare``: no observer on the guarded calls, the recall stages or the embedding batches (a
  build without metrics or tracing; the stages' two clock reads remain);
- ``metrics``: the default, the Prometheus observers on every store, index and embedder
  call, every recall stage and every embedding batch, tracing off (``WW_OTEL_ENABLED=false``);
- ``flag_off``: tracing installed but the ``telemetry`` flag off;
- ``tracing``: tracing on, spans going to the SDK's in-memory exporter (no network).

    python bench/tracing_overhead.py [--episodes 200] [--rounds 200] [--out DIR]

Modes take turns round by round, so drift of the machine touches each alike; the ratios to
``bare`` are the result (the issue asks that tracing off equal a build without it, within
noise). Writes ``DIR/tracing_overhead.json``; prints the JSON. A benchmark, not a test.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
    sys.path.insert(1, str(ROOT / "src"))

from opentelemetry.sdk.trace.export.in_memory_span_exporter import (  # noqa: E402
    InMemorySpanExporter,
)

from ww import tracing  # noqa: E402
from ww.api import metrics  # noqa: E402
from ww.config import Settings  # noqa: E402
from ww.embedding import service as embedding_service  # noqa: E402
from ww.engine import build_engine  # noqa: E402
from ww.models import EpisodeCreate  # noqa: E402
from ww.storage import guarded  # noqa: E402

MODES = ("bare", "metrics", "flag_off", "tracing")
QUERIES = ("where did we meet", "the red kite", "a meeting about the budget", "river walk")


def _mode(name: str, settings: Settings, flag: list[bool], exporter: InMemorySpanExporter) -> None:
    tracing.uninstall()
    observers: list[tuple[list[Any], Any]] = [
        (guarded.OBSERVERS, metrics.observe_store_call),
        (tracing.STAGE_OBSERVERS, metrics.observe_recall_stage),
        (embedding_service.BATCH_OBSERVERS, metrics.observe_batch),
    ]
    for registered, observer in observers:
        registered.clear()
        if name != "bare":
            registered.append(observer)
    if name in ("flag_off", "tracing"):
        tracing.install(settings, lambda: flag[0], exporter)
    flag[0] = name == "tracing"


async def run(episodes: int, rounds: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(
            _env_file=None, data_dir=Path(tmp), environment="test", otel_enabled=True
        )  # type: ignore[call-arg]
        engine = build_engine(settings)
        await engine.open()
        try:
            items = [
                EpisodeCreate(content=f"note {i} about {QUERIES[i % 4]}") for i in range(episodes)
            ]
            await engine.create_episodes("bench", items)
            flag, exporter = [False], InMemorySpanExporter()
            times: dict[str, list[float]] = {m: [] for m in MODES}
            for r in range(rounds):
                for name in MODES:
                    _mode(name, settings, flag, exporter)
                    start = time.perf_counter()
                    await engine.recall_episodes("bench", QUERIES[r % 4], learn=False)
                    times[name].append(time.perf_counter() - start)
                    exporter.clear()
        finally:
            tracing.uninstall()
            await engine.close()
    p50 = {m: statistics.median(t) * 1000 for m, t in times.items()}
    return {
        "python": platform.python_version(),
        "episodes": episodes,
        "rounds": rounds,
        "p50_ms": {m: round(v, 3) for m, v in p50.items()},
        "ratio_to_bare": {m: round(v / p50["bare"], 3) for m, v in p50.items()},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--episodes", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    result = asyncio.run(run(args.episodes, args.rounds))
    text = json.dumps(result, indent=2)
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "tracing_overhead.json").write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
