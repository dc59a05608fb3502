"""How long one normal client waits while others flood the server with big bodies.

    python bench/stall.py --out bench/results
    python bench/stall.py --baseline-src /tmp/old/src --out bench/results   # + the old code

A real server (``python -m ww.api.server``, embedded tier) runs on loopback. One normal
client gets an episode and recalls (``learn=false``) in a loop, first alone (``quiet``),
then while ``--attackers`` connections each send, again and again, a ~9 MB JSON batch of
560,000 tiny episodes (``attack``). The report gives the normal client's p50, p99 and worst
latency in both phases and their ratio, what the attackers were answered, and the server's
resident memory (VmRSS) before, at its peak, and 10 s and 30 s after the attack stops.

``--baseline-src`` runs the same scenario first against another source tree (e.g. the code
before the body limits, from ``git archive``), so the two are compared in one run. Prints
the report as JSON and writes ``stall.json`` and ``stall.md`` to ``--out``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script: make `bench` and `ww` importable
    sys.path.insert(0, str(ROOT))
    sys.path.insert(1, str(ROOT / "src"))

import httpx  # noqa: E402

from bench.bench_server import API, Server, log  # noqa: E402

__all__ = ["attack_body", "main"]

HOST = "127.0.0.1"
SESSION = {"X-Session-ID": "stall"}
TINY_EPISODES = 560_000
AFTER_S = (10.0, 30.0)
REQUEST_TIMEOUT_S = 300.0


def attack_body(items: int = TINY_EPISODES) -> bytes:
    return b'{"episodes":[' + b",".join([b'{"content":"a"}'] * items) + b"]}"


# -- the attackers: a process of their own, so that their loop does not slow the client ----
async def _attack_once(port: int, payload: bytes) -> str:
    try:
        reader, writer = await asyncio.open_connection(HOST, port)
    except OSError:
        return "connect_failed"
    try:
        writer.write(payload)
        await writer.drain()
        line = await asyncio.wait_for(reader.readline(), REQUEST_TIMEOUT_S)
        return line.split()[1].decode() if line.startswith(b"HTTP/") else "closed"
    except (OSError, TimeoutError):
        return "reset"
    finally:
        writer.close()


async def _attack(port: int, attackers: int, stop_at: float, results: Any) -> None:
    body = attack_body()
    payload = (
        b"POST /api/v1/episodes/batch HTTP/1.1\r\nHost: t\r\nX-Session-ID: flood\r\n"
        b"Content-Type: application/json\r\nConnection: close\r\nContent-Length: "
        + str(len(body)).encode()
        + b"\r\n\r\n"
        + body
    )
    counts: Counter[str] = Counter()

    async def one() -> None:
        while time.time() < stop_at:
            counts[await _attack_once(port, payload)] += 1

    await asyncio.gather(*(one() for _ in range(attackers)))
    results.put(dict(counts))


def _attack_process(port: int, attackers: int, stop_at: float, results: Any) -> None:
    asyncio.run(_attack(port, attackers, stop_at, results))


# -- the normal client and the memory sampler ------------------------------------------------
def _normal_client(client: httpx.Client, episode_id: str, until: float) -> list[float]:
    latencies: list[float] = []
    recall = {"query": "what happened at the deploy", "limit": 5, "learn": False}
    while time.monotonic() < until:
        for method, path, body in (
            ("GET", f"{API}/episodes/{episode_id}", None),
            ("POST", f"{API}/episodes/recall", recall),
        ):
            t0 = time.perf_counter()
            r = client.request(method, path, json=body, headers=SESSION)
            latencies.append(time.perf_counter() - t0)
            r.raise_for_status()
    return latencies


def _summary(latencies: list[float]) -> dict[str, float | int]:
    ordered = sorted(latencies)
    return {
        "requests": len(ordered),
        "p50_ms": round(1000 * statistics.median(ordered), 1),
        "p99_ms": round(1000 * ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))], 1),
        "max_ms": round(1000 * ordered[-1], 1),
    }


class _Rss:
    """VmRSS of the server, sampled every 0.2 s in a thread."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.peak = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def now(self) -> float:
        return self.server.memory_mb().get("VmRSS", 0.0)

    def _run(self) -> None:
        while not self._stop.wait(0.2):
            self.peak = max(self.peak, self.now())

    def __enter__(self) -> _Rss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def run_scenario(label: str, src: Path, attackers: int, duration_s: float) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="ww-stall-") as tmp:
        server = Server(
            Path(tmp) / "data",
            Path(tmp),
            Path(tmp) / "server.log",
            extra_env={"WW_ENVIRONMENT": "test"},
            src=src,
        )
        server.start()
        try:
            return _measure(label, server, attackers, duration_s)
        finally:
            server.stop()


def _measure(label: str, server: Server, attackers: int, duration_s: float) -> dict[str, Any]:
    with httpx.Client(base_url=server.base_url, timeout=REQUEST_TIMEOUT_S, trust_env=False) as c:
        first = {"content": "the deploy went out"}
        created = c.post(f"{API}/episodes", json=first, headers=SESSION)
        created.raise_for_status()
        episode_id = created.json()["id"]
        _normal_client(c, episode_id, time.monotonic() + 3.0)  # warm-up
        rss_before = server.memory_mb().get("VmRSS", 0.0)
        log(f"{label}: quiet phase, {duration_s:.0f} s")
        quiet = _normal_client(c, episode_id, time.monotonic() + duration_s)
        log(f"{label}: attack phase, {attackers} attackers, {duration_s:.0f} s")
        results: Any = multiprocessing.get_context("spawn").Queue()
        proc = multiprocessing.get_context("spawn").Process(
            target=_attack_process,
            args=(server.port, attackers, time.time() + duration_s, results),
        )
        with _Rss(server) as rss:
            proc.start()
            attack = _normal_client(c, episode_id, time.monotonic() + duration_s)
            statuses = results.get(timeout=REQUEST_TIMEOUT_S + duration_s)
            proc.join()
            stopped = time.monotonic()
            after: dict[str, float] = {}
            for wait in AFTER_S:
                time.sleep(max(0.0, stopped + wait - time.monotonic()))
                after[f"after_{wait:.0f}s"] = rss.now()
            peak = rss.peak
    quiet_s, attack_s = _summary(quiet), _summary(attack)
    return {
        "label": label,
        "quiet": quiet_s,
        "attack": attack_s,
        "ratio_p99": round(float(attack_s["p99_ms"]) / float(quiet_s["p99_ms"]), 1),
        "ratio_max": round(float(attack_s["max_ms"]) / float(quiet_s["max_ms"]), 1),
        "attack_answers": statuses,
        "rss_mb": {"before": rss_before, "peak": peak, **after},
    }


def _markdown(report: dict[str, Any]) -> str:
    cfg = report["config"]
    lines = [
        "# Stall under big bodies (bench/stall.py)",
        "",
        f"One normal client (get + recall, one connection) against `python -m ww.api.server` "
        f"(embedded tier, 1 worker), alone for {cfg['duration_s']:.0f} s, then while "
        f"{cfg['attackers']} connections send {cfg['body_mb']} MB JSON batches of "
        f"{TINY_EPISODES:,} tiny episodes again and again for {cfg['duration_s']:.0f} s. "
        f"Machine: {cfg['cpus']} CPUs, shared.",
        "",
        "| code | phase | requests | p50 ms | p99 ms | worst ms | p99 ratio | worst ratio |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for run in report["runs"]:
        for phase in ("quiet", "attack"):
            s = run[phase]
            ratios = f"{run['ratio_p99']} | {run['ratio_max']}" if phase == "attack" else "1 | 1"
            lines.append(
                f"| {run['label']} | {phase} | {s['requests']} | {s['p50_ms']} | {s['p99_ms']} "
                f"| {s['max_ms']} | {ratios} |"
            )
    lines += [
        "",
        "Server memory (VmRSS, MB) and what the attackers were answered:",
        "",
        "| code | before | peak | 10 s after | 30 s after | attackers' answers |",
        "|---|---|---|---|---|---|",
    ]
    for run in report["runs"]:
        m = run["rss_mb"]
        answers = ", ".join(f"{k}: {v}" for k, v in sorted(run["attack_answers"].items()))
        lines.append(
            f"| {run['label']} | {m['before']} | {m['peak']} | {m['after_10s']} "
            f"| {m['after_30s']} | {answers} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--attackers", type=int, default=200)
    parser.add_argument("--duration", type=float, default=20.0, help="seconds per phase")
    parser.add_argument("--baseline-src", type=Path, help="another src/ to run first")
    parser.add_argument("--out", type=Path, help="folder for stall.json and stall.md")
    args = parser.parse_args(argv)
    runs = []
    if args.baseline_src is not None:
        runs.append(run_scenario("baseline", args.baseline_src, args.attackers, args.duration))
    runs.append(run_scenario("this tree", ROOT / "src", args.attackers, args.duration))
    report = {
        "config": {
            "attackers": args.attackers,
            "duration_s": args.duration,
            "body_mb": round(len(attack_body()) / 1e6, 2),
            "cpus": multiprocessing.cpu_count(),
        },
        "runs": runs,
    }
    print(json.dumps(report, indent=2))
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "stall.json").write_text(json.dumps(report, indent=2) + "\n")
        (args.out / "stall.md").write_text(_markdown(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
