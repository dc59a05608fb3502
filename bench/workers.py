"""Worker sizing: memory and throughput per API worker, for ``WW_API_WORKERS`` 1, 2 and 4.

    python bench/workers.py [--workers 1,2,4] [--clients 8] [--duration 10] [--batch 16]
                            [--no-embedded] [--out bench/results]

The figures behind the sizing advice of ``docs/operations.md``. Several workers need the
server tier, so a Neo4j is started from the test harness (``tools/neo4j-harness``, JDK 17;
``WW_TEST_NEO4J_JAR`` points at another launcher) with records and vectors in it
(``WW_VECTOR_BACKEND=neo4j``), emptied before each worker count. For each count the
benchmark starts ``python -m ww.api.server`` on a free loopback port, sends untimed
warm-up requests (twice the clients, or workers, of each kind: a worker's first requests
pay for Neo4j's query plans and the embedder's first batch) and then:

1. ingests for ``--duration`` seconds: ``--clients`` clients each sending
   ``POST /api/v1/episodes/batch`` of ``--batch`` synthetic episodes (``bench.synthetic``),
   one after the other: ``ingest_per_s`` (episodes acknowledged per second);
2. recalls for ``--duration`` seconds: the same clients sending distinct queries
   (``learn=false``, limit 10): ``recall_per_s``;
3. reads each process's memory from ``/proc``: ``VmRSS`` (resident, which counts shared
   pages in every process), ``VmHWM`` (its peak) and ``Pss`` (shared pages split between
   the processes sharing them), for every worker and for the supervisor.

Every request opens its own connection (``Connection: close``), as the load balancer of
``docker-compose.prod.yml`` does, so the kernel spreads them over the workers. Unless
``--no-embedded`` is given, the embedded tier (SQLite + Qdrant Edge, one process) is
measured the same way first, as the single-worker reference. Prints the report as JSON and
writes ``workers.json`` and ``workers.md`` to ``--out``. A benchmark, not a test: on a
machine other programs share, compare the ratios between rows of one run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import re
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script: make `bench` and `ww` importable
    sys.path.insert(0, str(ROOT))
    sys.path.insert(1, str(ROOT / "src"))

import httpx  # noqa: E402

from bench.bench_server import API, Server, log  # noqa: E402
from bench.synthetic import generate_memories, generate_queries  # noqa: E402

__all__ = ["main", "process_memory", "worker_pids"]

DEFAULT_OUT = ROOT / "bench" / "results"
REQUEST_TIMEOUT_S = 120.0


# -- memory, from /proc -------------------------------------------------------------------------
def process_memory(pid: int) -> dict[str, float]:
    """``VmRSS``, ``VmHWM`` and ``Pss`` of ``pid`` in MB (missing keys if it is gone)."""
    out: dict[str, float] = {}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                out[key] = round(int(value.split()[0]) / 1024, 1)
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            key, _, value = line.partition(":")
            if key == "Pss":
                out["Pss"] = round(int(value.split()[0]) / 1024, 1)
    except OSError:
        pass
    return out


def worker_pids(supervisor: int) -> list[int]:
    """The supervisor's worker processes: multiprocessing's spawned children (not its
    resource tracker)."""
    try:
        children = Path(f"/proc/{supervisor}/task/{supervisor}/children").read_text().split()
    except OSError:
        return []
    pids = []
    for child in map(int, children):
        try:
            if b"spawn_main" in Path(f"/proc/{child}/cmdline").read_bytes():
                pids.append(child)
        except OSError:
            continue
    return sorted(pids)


# -- load -----------------------------------------------------------------------------------
async def _phase(
    url: str,
    clients: int,
    duration_s: float,
    bodies: list[tuple[str, dict[str, Any]]],
    max_requests: int | None = None,
) -> dict[str, Any]:
    """``clients`` loops sending ``bodies`` round-robin until ``duration_s`` has passed (or
    ``max_requests`` have been sent); counts the items answered (a batch's episodes, or
    one per recall) and the failures."""
    done = {"requests": 0, "items": 0, "failed": 0}
    next_body = iter(range(10**9))
    headers = {"X-Session-ID": "workers-bench", "Connection": "close"}
    async with httpx.AsyncClient(
        base_url=url,
        timeout=REQUEST_TIMEOUT_S,
        headers=headers,
        trust_env=False,
        limits=httpx.Limits(max_connections=clients, max_keepalive_connections=0),
    ) as http:
        t0 = time.perf_counter()
        deadline = t0 + duration_s

        async def client() -> None:
            while time.perf_counter() < deadline:
                n = next(next_body)
                if max_requests is not None and n >= max_requests:
                    return
                path, body = bodies[n % len(bodies)]
                try:
                    r = await http.post(path, json=body)
                    ok = r.status_code < 300
                except httpx.TransportError:
                    ok = False
                done["requests"] += 1
                if ok:
                    done["items"] += len(body.get("episodes", [None]))
                else:
                    done["failed"] += 1

        await asyncio.gather(*(client() for _ in range(clients)))
        elapsed = time.perf_counter() - t0
    return {**done, "seconds": round(elapsed, 2), "per_s": round(done["items"] / elapsed, 1)}


def _ingest_bodies(batch: int, seed: int) -> list[tuple[str, dict[str, Any]]]:
    memories = generate_memories(batch * 400, seed=seed)
    return [
        (f"{API}/episodes/batch", {"episodes": memories[i : i + batch]})
        for i in range(0, len(memories), batch)
    ]


def _recall_bodies(seed: int) -> list[tuple[str, dict[str, Any]]]:
    return [
        (f"{API}/episodes/recall", {"query": q, "limit": 10, "learn": False})
        for q in generate_queries(2000, seed=seed)
    ]


# -- one worker count ---------------------------------------------------------------------------
def _measure(
    label: str, workers: int, env: dict[str, str], args: argparse.Namespace, work: Path
) -> dict[str, Any]:
    data = work / f"data-{label}"
    server = Server(data, work, work / f"server-{label}.log", extra_env=env)
    try:
        startup_s = server.start()
        # Untimed: each worker's first requests pay for warming up (Neo4j's query plans,
        # the embedder's first batch), which a short phase would otherwise mostly measure.
        warm = 2 * max(args.clients, workers)
        for bodies in (_ingest_bodies(args.batch, 10), _recall_bodies(13)):
            asyncio.run(_phase(server.base_url, args.clients, REQUEST_TIMEOUT_S, bodies, warm))
        log(f"{label}: up in {startup_s:.1f}s; ingesting for {args.duration}s")
        ingest = asyncio.run(
            _phase(server.base_url, args.clients, args.duration, _ingest_bodies(args.batch, 11))
        )
        log(f"{label}: {ingest['per_s']} episodes/s; recalling for {args.duration}s")
        recall = asyncio.run(
            _phase(server.base_url, args.clients, args.duration, _recall_bodies(12))
        )
        log(f"{label}: {recall['per_s']} recalls/s")
        pids = worker_pids(server.pid) if workers > 1 else [server.pid]
        per_worker = [process_memory(pid) for pid in pids]
        supervisor = process_memory(server.pid) if workers > 1 else {}
    finally:
        server.stop()
        shutil.rmtree(data, ignore_errors=True)

    def mean(key: str) -> float:
        values = [m[key] for m in per_worker if key in m]
        return round(sum(values) / len(values), 1) if values else 0.0

    return {
        "label": label,
        "workers": workers,
        "startup_s": round(startup_s, 1),
        "ingest": ingest,
        "recall": recall,
        "worker_memory_mb": per_worker,
        "supervisor_memory_mb": supervisor,
        "rss_per_worker_mb": mean("VmRSS"),
        "peak_rss_per_worker_mb": mean("VmHWM"),
        "pss_per_worker_mb": mean("Pss"),
        "total_pss_mb": round(
            sum(m.get("Pss", 0.0) for m in per_worker) + supervisor.get("Pss", 0.0), 1
        ),
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    counts = [int(x) for x in args.workers.split(",")]
    report: dict[str, Any] = {
        "info": {
            "cpu_count": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
            "date": datetime.now(UTC).isoformat(timespec="seconds"),
            "loadavg_start": [round(x, 2) for x in os.getloadavg()],
            "clients": args.clients,
            "duration_s": args.duration,
            "batch": args.batch,
        },
        "runs": [],
    }
    work = Path(tempfile.mkdtemp(prefix="ww-workers-"))
    neo4j = None
    try:
        if not args.no_embedded:
            report["runs"].append(_measure("embedded-1", 1, {}, args, work))
        from tests.neo4j_launcher import Neo4jProcess, launcher_jar, wipe_database

        neo4j = Neo4jProcess(launcher_jar(), work / "neo4j")
        neo4j.start()
        for n in counts:
            wipe_database(neo4j.uri)
            env = {
                "WW_NEO4J_URI": neo4j.uri,
                "WW_VECTOR_BACKEND": "neo4j",
                "WW_API_WORKERS": str(n),
            }
            report["runs"].append(_measure(f"server-{n}", n, env, args, work))
    finally:
        if neo4j is not None:
            neo4j.stop()
        shutil.rmtree(work, ignore_errors=True)
    report["info"]["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
    _add_ratios(report["runs"])
    return report


def _add_ratios(runs: list[dict[str, Any]]) -> None:
    """Throughput against the server tier's single worker, and per worker."""
    base = next((r for r in runs if r["label"] == "server-1"), None)
    for r in runs:
        for phase in ("ingest", "recall"):
            rate = r[phase]["per_s"]
            r[phase]["per_worker_per_s"] = round(rate / r["workers"], 1)
            if base is not None and base[phase]["per_s"]:
                r[phase]["vs_server_1"] = round(rate / base[phase]["per_s"], 2)


def markdown(report: dict[str, Any]) -> str:
    inf = report["info"]
    lines = [
        "# World Weaver worker sizing",
        "",
        f"{inf['date']}, {inf['cpu_count']} CPUs ({inf['platform']}, Python {inf['python']}), "
        f"load average {inf['loadavg_start'][0]} at the start and {inf['loadavg_end'][0]} "
        f"at the end; {inf['clients']} clients, {inf['duration_s']} s per phase, "
        f"batches of {inf['batch']}. Neo4j (the test harness, "
        "-Xmx1g) ran on the same machine.",
        "",
        "| run | workers | ingest ep/s (x server-1) | recall/s (x server-1) | "
        "RSS / worker MB | peak RSS / worker MB | PSS / worker MB | total PSS MB | failed |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in report["runs"]:
        ing, rec = r["ingest"], r["recall"]
        lines.append(
            f"| {r['label']} | {r['workers']} | {ing['per_s']} ({ing.get('vs_server_1', '-')}) "
            f"| {rec['per_s']} ({rec.get('vs_server_1', '-')}) | {r['rss_per_worker_mb']} "
            f"| {r['peak_rss_per_worker_mb']} | {r['pss_per_worker_mb']} | {r['total_pss_mb']} "
            f"| {ing['failed'] + rec['failed']} |"
        )
    return "\n".join(lines) + "\n"


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--workers", default="1,2,4", help="comma-separated WW_API_WORKERS values")
    p.add_argument("--clients", type=int, default=8, help="requests in flight")
    p.add_argument("--duration", type=float, default=10.0, help="seconds per phase")
    p.add_argument("--batch", type=int, default=16, help="episodes per batch request")
    p.add_argument("--no-embedded", action="store_true", help="skip the embedded reference")
    p.add_argument("--out", default=str(DEFAULT_OUT), help="folder for workers.json/.md")
    args = p.parse_args(argv)
    if not re.fullmatch(r"\d+(,\d+)*", str(args.workers)):
        p.error("--workers takes comma-separated integers, e.g. 1,2,4")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    report = run(args)
    print(json.dumps(report, indent=2))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "workers.json").write_text(json.dumps(report, indent=2) + "\n")
    (out / "workers.md").write_text(markdown(report))
    failed = sum(r["ingest"]["failed"] + r["recall"]["failed"] for r in report["runs"])
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
