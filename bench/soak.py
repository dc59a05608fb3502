"""Soak and chaos benchmark: many clients against a real server, an optional SIGKILL and
restart mid-run, then a full verification of what the server acknowledged.

    python bench/soak.py --clients 16 --sessions 8 --duration 180 --kill-at 90 --out bench/results
    python bench/soak.py --tier server --workers 4 --duration 120 --kill-at 60 --out DIR

Clients mix single creates, batch creates, recalls with learning, gets, deletes and list
pages across sessions. Afterwards every acknowledged create must be present with its content
and recallable by its unique word, every acknowledged delete gone, nothing visible from
another session, and no 5xx answered. A request whose connection broke (the kill) has an
unknown outcome and is only counted. Prints the report as JSON and writes ``soak.json`` and
``soak.md`` to ``--out``. Loopback only; every loop is bounded by ``--duration``.

``--tier server`` keeps records and vectors in a Neo4j started from the test harness
(``tools/neo4j-harness``, JDK 17) with ``WW_API_WORKERS`` workers.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import re
import shutil
import signal
import sys
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script: make `bench` and `ww` importable
    sys.path.insert(0, str(ROOT))
    sys.path.insert(1, str(ROOT / "src"))

import httpx  # noqa: E402

from bench.bench_server import API, Server, log  # noqa: E402

__all__ = ["SoakConfig", "main", "run_soak"]

WORDS = [
    "deploy",
    "billing",
    "migration",
    "cache",
    "latency",
    "invoice",
    "garden",
    "recipe",
    "trip",
    "budget",
    "meeting",
    "release",
    "backup",
    "schema",
    "queue",
    "worker",
    "alert",
    "dashboard",
    "contract",
    "hiring",
    "roadmap",
]
# op -> weight; recalls learn, so the learning writes race the record writes too.
MIX = {"create": 30, "batch": 10, "recall": 20, "get": 15, "delete": 8, "list": 12, "miss": 5}
RETRY_PAUSE_S = 0.2
VERIFY_RECALLS = 300


@dataclass(frozen=True)
class SoakConfig:
    clients: int = 16
    sessions: int = 8
    duration_s: float = 180.0
    kill_at_s: float | None = None
    tier: str = "embedded"
    workers: int = 1
    seed: int = 7


@dataclass
class Ledger:
    """What the server acknowledged, and how every request ended."""

    created: dict[str, tuple[str, str]] = field(default_factory=dict)  # id -> session, content
    deleted: dict[str, str] = field(default_factory=dict)  # id -> session
    live: dict[str, list[str]] = field(default_factory=dict)  # session -> ids to act on
    # A delete whose connection broke may or may not have happened: checked neither way.
    doubtful_deletes: set[str] = field(default_factory=set)
    in_doubt: int = 0  # requests whose connection broke: outcome unknown
    statuses: Counter[str] = field(default_factory=Counter)
    latencies: dict[str, list[float]] = field(default_factory=dict)
    server_errors: list[str] = field(default_factory=list)

    def add(self, session: str, item_id: str, content: str) -> None:
        self.created[item_id] = (session, content)
        self.live.setdefault(session, []).append(item_id)

    def forget(self, session: str, item_id: str) -> None:
        self.created.pop(item_id, None)
        ids = self.live.get(session, [])
        if item_id in ids:
            ids.remove(item_id)

    def note(self, op: str, status: int | str, seconds: float) -> None:
        self.statuses[f"{op}:{status}"] += 1
        self.latencies.setdefault(op, []).append(seconds)


def _content(rng: random.Random, token: str) -> str:
    words = " ".join(rng.choice(WORDS) for _ in range(rng.randint(4, 14)))
    return f"{words} marker {token}"


def _token() -> str:
    # One word that no other memory contains: keyword search finds exactly this memory.
    return "zq" + uuid.uuid4().hex[:16]


async def _client(
    n: int,
    cfg: SoakConfig,
    url: str,
    deadline: float,
    ledger: Ledger,
    gate: asyncio.Event,
) -> None:
    rng = random.Random(cfg.seed * 1000 + n)
    ops, weights = zip(*MIX.items(), strict=True)
    async with httpx.AsyncClient(base_url=url, timeout=30.0, trust_env=False) as http:
        while time.monotonic() < deadline:
            await gate.wait()  # closed while the server restarts
            session = f"soak-{rng.randrange(cfg.sessions)}"
            headers = {"X-Session-ID": session}
            op = rng.choices(ops, weights)[0]
            mine = ledger.live.get(session, [])
            t0 = time.perf_counter()
            if op in ("get", "delete", "recall", "miss") and not mine:
                op = "create"  # nothing of this session to act on yet
            try:
                status = await _one(op, http, headers, session, rng, mine, ledger)
            except httpx.TransportError:
                # The server went away mid-request: a write may or may not have happened.
                ledger.in_doubt += 1
                ledger.note(op, "transport", time.perf_counter() - t0)
                await asyncio.sleep(RETRY_PAUSE_S)
                continue
            ledger.note(op, status, time.perf_counter() - t0)
            if status >= 500:
                ledger.server_errors.append(f"{op} {status}")


async def _one(
    op: str,
    http: httpx.AsyncClient,
    headers: dict[str, str],
    session: str,
    rng: random.Random,
    mine: list[str],
    ledger: Ledger,
) -> int:
    if op == "create":
        content = _content(rng, _token())
        r = await http.post(f"{API}/episodes", json={"content": content}, headers=headers)
        if r.status_code == 201:
            ledger.add(session, r.json()["id"], content)
        return r.status_code
    if op == "batch":
        contents = [_content(rng, _token()) for _ in range(rng.randint(2, 20))]
        body = {"episodes": [{"content": c} for c in contents]}
        r = await http.post(f"{API}/episodes/batch", json=body, headers=headers)
        if r.status_code == 201:
            for episode, content in zip(r.json()["episodes"], contents, strict=True):
                ledger.add(session, episode["id"], content)
        return r.status_code
    if op == "recall":
        _, content = ledger.created[rng.choice(mine)]
        query = " ".join(content.split()[:4])
        r = await http.post(
            f"{API}/episodes/recall",
            json={"query": query, "limit": 5, "learn": True},
            headers=headers,
        )
        return r.status_code
    if op == "get":
        r = await http.get(f"{API}/episodes/{rng.choice(mine)}", headers=headers)
        return r.status_code
    if op == "delete":
        victim = rng.choice(mine)
        ledger.forget(session, victim)
        try:
            r = await http.delete(f"{API}/episodes/{victim}", headers=headers)
        except httpx.TransportError:
            ledger.doubtful_deletes.add(victim)
            raise
        if r.status_code == 204:
            ledger.deleted[victim] = session
        elif r.status_code != 404:  # 404: another client deleted it first
            ledger.doubtful_deletes.add(victim)
        return r.status_code
    if op == "list":
        r = await http.get(f"{API}/episodes", params={"limit": 50}, headers=headers)
        return r.status_code
    # "miss": an id of this session asked for from another session must not be found.
    other = {"X-Session-ID": session + "-other"}
    r = await http.get(f"{API}/episodes/{rng.choice(mine)}", headers=other)
    if r.status_code != 404:
        ledger.server_errors.append(f"cross-session get answered {r.status_code}")
    return r.status_code


async def _killer(server: Server, at_s: float, gate: asyncio.Event, out: dict[str, Any]) -> None:
    await asyncio.sleep(at_s)
    log(f"SIGKILL server pid {server.pid}")
    server.proc.send_signal(signal.SIGKILL)  # type: ignore[union-attr]
    server.proc.wait()  # type: ignore[union-attr]
    gate.clear()
    out["killed_at_s"] = at_s
    out["restart_s"] = round(await asyncio.to_thread(server.start), 2)
    gate.set()
    log(f"restarted in {out['restart_s']} s")


async def _all_ids(http: httpx.AsyncClient, session: str) -> dict[str, str]:
    """Every episode of ``session``: id -> content, through the list pages."""
    out: dict[str, str] = {}
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"limit": 200}
        if cursor:
            params["cursor"] = cursor
        r = await http.get(f"{API}/episodes", params=params, headers={"X-Session-ID": session})
        r.raise_for_status()
        page = r.json()
        out.update({e["id"]: e["content"] for e in page["items"]})
        cursor = page.get("next_cursor")
        if not cursor:
            return out


async def _verify(url: str, cfg: SoakConfig, ledger: Ledger) -> dict[str, Any]:
    rng = random.Random(cfg.seed)
    lost = wrong_content = resurrected = leaked = not_recalled = 0
    async with httpx.AsyncClient(base_url=url, timeout=60.0, trust_env=False) as http:
        stored = {f"soak-{s}": await _all_ids(http, f"soak-{s}") for s in range(cfg.sessions)}
        owner = {i: s for s, ids in stored.items() for i in ids}
        for item_id, (session, content) in ledger.created.items():
            if item_id not in stored[session]:
                lost += 1
            elif stored[session][item_id] != content:
                wrong_content += 1
        for item_id, session in ledger.deleted.items():
            if item_id in stored[session] and item_id not in ledger.doubtful_deletes:
                resurrected += 1
        # Nothing listed in one session was created in another.
        leaked += sum(
            1 for i, s in owner.items() if i in ledger.created and ledger.created[i][0] != s
        )
        sample = rng.sample(sorted(ledger.created), min(VERIFY_RECALLS, len(ledger.created)))
        for item_id in sample:
            session, content = ledger.created[item_id]
            token = content.rsplit(" ", 1)[-1]
            r = await http.post(
                f"{API}/episodes/recall",
                json={"query": token, "limit": 10},
                headers={"X-Session-ID": session},
            )
            hits = [h["episode"]["id"] for h in r.json()["hits"]] if r.status_code == 200 else []
            not_recalled += item_id not in hits
            other = await http.get(
                f"{API}/episodes/{item_id}", headers={"X-Session-ID": session + "-x"}
            )
            leaked += other.status_code != 404
    return {
        "acknowledged_creates": len(ledger.created),
        "acknowledged_deletes": len(ledger.deleted),
        "deletes_in_doubt": len(ledger.doubtful_deletes),
        "stored": sum(len(v) for v in stored.values()),
        "lost": lost,
        "wrong_content": wrong_content,
        "resurrected": resurrected,
        "cross_session": leaked,
        "recall_checked": len(sample),
        "not_recalled": not_recalled,
    }


def _pct(xs: list[float], q: float) -> float:
    ys = sorted(xs)
    return round(1000 * ys[min(len(ys) - 1, int(q * len(ys)))], 1) if ys else 0.0


async def run_soak(cfg: SoakConfig, server: Server) -> dict[str, Any]:
    """Drive ``server`` (already started) for ``cfg.duration_s``, then verify."""
    ledger = Ledger()
    gate = asyncio.Event()
    gate.set()
    chaos: dict[str, Any] = {}
    t0 = time.monotonic()
    deadline = t0 + cfg.duration_s
    tasks = [
        asyncio.create_task(_client(n, cfg, server.base_url, deadline, ledger, gate))
        for n in range(cfg.clients)
    ]
    if cfg.kill_at_s is not None:
        tasks.append(asyncio.create_task(_killer(server, cfg.kill_at_s, gate, chaos)))
    await asyncio.gather(*tasks)
    elapsed = time.monotonic() - t0
    verify = await _verify(server.base_url, cfg, ledger)
    fivexx = sum(n for k, n in ledger.statuses.items() if k.split(":")[1].startswith("5"))
    requests = sum(ledger.statuses.values())
    return {
        "config": cfg.__dict__,
        "requests": requests,
        "requests_per_s": round(requests / elapsed, 1),
        "status_counts": dict(sorted(ledger.statuses.items())),
        "server_errors_5xx": fivexx,
        "server_error_samples": ledger.server_errors[:20],
        "in_doubt": ledger.in_doubt,
        "latency_ms": {
            op: {"p50": _pct(xs, 0.5), "p95": _pct(xs, 0.95), "n": len(xs)}
            for op, xs in sorted(ledger.latencies.items())
        },
        "chaos": chaos,
        "verify": verify,
        "ok": fivexx == 0
        and all(verify[k] == 0 for k in ("lost", "wrong_content", "resurrected", "cross_session"))
        and verify["not_recalled"] == 0,
    }


def markdown(report: dict[str, Any]) -> str:
    v, c = report["verify"], report["config"]
    lines = [
        "# Soak",
        "",
        f"{c['clients']} clients, {c['sessions']} sessions, {c['duration_s']:.0f} s, tier "
        f"{c['tier']} ({c['workers']} worker(s)), SIGKILL at "
        f"{report['chaos'].get('killed_at_s', 'none')} s, restart "
        f"{report['chaos'].get('restart_s', '-')} s. Result: "
        f"**{'pass' if report['ok'] else 'FAIL'}**.",
        "",
        "| acknowledged creates | deletes | lost | wrong content | resurrected | "
        "cross-session | not recalled / checked | 5xx | in doubt | requests/s |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        f"| {v['acknowledged_creates']} | {v['acknowledged_deletes']} | {v['lost']} | "
        f"{v['wrong_content']} | {v['resurrected']} | {v['cross_session']} | "
        f"{v['not_recalled']} / {v['recall_checked']} | {report['server_errors_5xx']} | "
        f"{report['in_doubt']} | {report['requests_per_s']} |",
        "",
        "| operation | n | p50 ms | p95 ms |",
        "|---|---:|---:|---:|",
        *(
            f"| {op} | {x['n']} | {x['p50']} | {x['p95']} |"
            for op, x in report["latency_ms"].items()
        ),
        "",
    ]
    return "\n".join(lines)


def _server_tier_env(workdir: Path, workers: int) -> tuple[Any, dict[str, str]]:
    from tests.neo4j_launcher import Neo4jProcess, launcher_jar

    neo4j = Neo4jProcess(launcher_jar(), workdir / "neo4j")
    neo4j.start()
    env = {
        "WW_NEO4J_URI": neo4j.uri,
        "WW_VECTOR_BACKEND": "neo4j",
        "WW_API_WORKERS": str(workers),
    }
    return neo4j, env


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--clients", type=int, default=16)
    p.add_argument("--sessions", type=int, default=8)
    p.add_argument("--duration", type=float, default=180.0, help="seconds of load")
    p.add_argument("--kill-at", type=float, default=None, help="SIGKILL and restart at this second")
    p.add_argument("--tier", choices=["embedded", "server"], default="embedded")
    p.add_argument("--workers", type=int, default=4, help="API workers on the server tier")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--out", default=None, help="folder for soak.json and soak.md")
    a = p.parse_args(argv)
    cfg = SoakConfig(
        clients=a.clients,
        sessions=a.sessions,
        duration_s=a.duration,
        kill_at_s=a.kill_at,
        tier=a.tier,
        workers=a.workers if a.tier == "server" else 1,
        seed=a.seed,
    )
    work = Path(tempfile.mkdtemp(prefix="ww-soak-"))
    neo4j = None
    try:
        env: dict[str, str] = {}
        if cfg.tier == "server":
            neo4j, env = _server_tier_env(work, cfg.workers)
        server = Server(work / "data", work, work / "server.log", extra_env=env)
        server.start()
        try:
            report = asyncio.run(run_soak(cfg, server))
        finally:
            server.stop()
        text = server.log_text()
        report["server_log_tracebacks"] = text.count("Traceback")
        # The exception line ending each traceback: what a failure was, without the rest.
        report["server_log_exceptions"] = sorted(
            set(re.findall(r"^(?:[\w.]+\.)?\w*(?:Error|Exception)\b.*$", text, re.MULTILINE))
        )[:20]
    finally:
        if neo4j is not None:
            neo4j.stop()
        shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(report, indent=2))
    if a.out:
        out = Path(a.out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "soak.json").write_text(json.dumps(report, indent=2) + "\n")
        (out / "soak.md").write_text(markdown(report))
    return report


if __name__ == "__main__":
    sys.exit(0 if main()["ok"] else 1)
