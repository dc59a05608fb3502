"""What an ``Idempotency-Key`` costs a create, and what a replay costs, on the embedded tier.

    python bench/idempotency.py [--requests 300] [--out DIR]

Runs the app in-process (TestClient, SQLite + Qdrant Edge in a temporary directory, the
vendored model) and times, in interleaved rounds so that drift hits all three alike:
``plain`` creates (no key), ``keyed`` creates (a fresh key each) and ``replay`` (a key that
already holds an answer). Every create has its own text, so each embeds. Reports the median
and p95 per request and the ratios to ``plain`` measured in the same run. Writes
``DIR/idempotency.json`` and ``DIR/idempotency.md``; prints the JSON. A benchmark, not a test.
"""

from __future__ import annotations

import argparse
import json
import os
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

from fastapi.testclient import TestClient  # noqa: E402

from ww.api import create_app  # noqa: E402
from ww.config import Settings  # noqa: E402

__all__ = ["main"]

URL = "/api/v1/episodes"


def _stats(times: list[float]) -> dict[str, float]:
    ordered = sorted(times)
    return {
        "median_ms": round(statistics.median(ordered) * 1000, 3),
        "p95_ms": round(ordered[int(0.95 * (len(ordered) - 1))] * 1000, 3),
    }


def run(requests: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="ww-bench-idem-") as tmp:
        settings = Settings(_env_file=None, data_dir=Path(tmp) / "data", environment="test")  # type: ignore[arg-type]
        times: dict[str, list[float]] = {"plain": [], "keyed": [], "replay": []}
        with TestClient(create_app(settings)) as client:
            h = {"X-Session-ID": "bench-idem"}
            stored = {"content": "the answer every replay gets"}
            assert client.post(
                URL, json=stored, headers={**h, "Idempotency-Key": "kept"}
            ).is_success
            for i in range(requests):
                for mode in ("plain", "keyed", "replay"):
                    if mode == "replay":
                        body, headers = stored, {**h, "Idempotency-Key": "kept"}
                    else:
                        body = {"content": f"{mode} create number {i}: the queue backlog grew"}
                        headers = {**h, "Idempotency-Key": f"k-{i}"} if mode == "keyed" else h
                    t0 = time.perf_counter()
                    r = client.post(URL, json=body, headers=headers)
                    times[mode].append(time.perf_counter() - t0)
                    assert r.status_code == 201, r.text
            episodes = client.get("/api/v1/sessions/bench-idem").json()["episodes"]
    result = {mode: _stats(t) for mode, t in times.items()}
    plain = result["plain"]["median_ms"]
    return {
        "requests_per_mode": requests,
        "episodes_stored": episodes,
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}",
        **result,
        "keyed_over_plain": round(result["keyed"]["median_ms"] / plain, 3),
        "replay_over_plain": round(result["replay"]["median_ms"] / plain, 3),
    }


def markdown(r: dict[str, Any]) -> str:
    rows = "\n".join(
        f"| {mode} | {r[mode]['median_ms']} | {r[mode]['p95_ms']} |"
        for mode in ("plain", "keyed", "replay")
    )
    return (
        "# Idempotency-Key overhead (embedded tier)\n\n"
        f"`python bench/idempotency.py --requests {r['requests_per_mode']}` on {r['machine']}; "
        f"{r['episodes_stored']} episodes stored (1 + plain + keyed: replays store nothing).\n\n"
        "| create | median ms | p95 ms |\n|---|---|---|\n"
        f"{rows}\n\n"
        f"keyed / plain (median): {r['keyed_over_plain']}; "
        f"replay / plain (median): {r['replay_over_plain']}\n"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    args = parser.parse_args()
    result = run(args.requests)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "idempotency.json").write_text(json.dumps(result, indent=2) + "\n")
    (args.out / "idempotency.md").write_text(markdown(result))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
