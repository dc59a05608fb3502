"""Several API workers on one port share everything: ``WW_API_WORKERS=4`` on the server tier.

``python -m ww.api.server`` runs as a subprocess with its records and vectors in the test
Neo4j (``WW_VECTOR_BACKEND=neo4j``). Each httpx client holds one kept-alive connection, so it
stays with the worker that accepted it; ``worker_pid`` in the health report says which one,
and it is checked around every request. What one worker writes or learns, another recalls.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.neo4j_launcher import Neo4jProcess, free_port, wipe_database

pytestmark = pytest.mark.slow

WORKERS = 4
HOST = "127.0.0.1"
READY_TIMEOUT_S = 180.0  # four workers each load the embedding model on a small machine
SESSION = {"X-Session-ID": "workers"}
# Parts that do not move with the wall clock between two recalls (recency, retrievability,
# activation and the Hebbian decay do, by microseconds' worth).
TIMELESS_PARTS = ("semantic", "keyword", "importance", "speaker", "value", "ff")


class Pool:
    """Clients on separate connections, found by the worker that answers each.

    A connection idle for longer than uvicorn's keep-alive (5 s) is closed, and the
    client's next connection may land on another worker; so before each request the pool
    looks for a client whose connection is on the wanted worker (opening new ones if
    need be), and after it checks that the answer came from there.
    """

    def __init__(self, url: str) -> None:
        self.url = url
        self.clients: list[httpx.Client] = []

    def _pid(self, client: httpx.Client) -> int:
        return int(client.get("/api/v1/health").json()["worker_pid"])

    def _new(self) -> httpx.Client:
        client = httpx.Client(
            base_url=self.url, timeout=60.0, limits=httpx.Limits(max_connections=1)
        )
        self.clients.append(client)
        return client

    def discover(self, want: int) -> list[int]:
        """Worker pids, up to ``want`` distinct ones, each found on a connection."""
        seen: list[int] = []
        for _ in range(64):
            pid = self._pid(self._new())
            if pid not in seen:
                seen.append(pid)
            if len(seen) == want:
                break
        return seen

    def on(self, pid: int) -> httpx.Client:
        for client in self.clients:
            if self._pid(client) == pid:
                return client
        for _ in range(64):
            client = self._new()
            if self._pid(client) == pid:
                return client
        raise AssertionError(f"no connection reaches worker {pid}")

    def close(self) -> None:
        for client in self.clients:
            client.close()


@dataclass
class Worker:
    pid: int
    pool: Pool

    def call(self, method: str, path: str, **kw: Any) -> httpx.Response:
        """The request, sent on a connection that this worker, and only it, serves."""
        client = self.pool.on(self.pid)
        response = client.request(method, path, headers=SESSION, **kw)
        assert self.pool._pid(client) == self.pid, "the request's connection changed worker"
        assert response.status_code < 300, (method, path, response.text)
        return response


@contextlib.contextmanager
def serve(neo4j_server: Neo4jProcess, tmp_path: Path, **extra_env: str) -> Iterator[str]:
    """``python -m ww.api.server`` with WORKERS workers on the test Neo4j; yields its URL.

    ``extra_env`` adds ``WW_*`` settings to the ones every multi-worker server needs.
    """
    with serve_process(neo4j_server, tmp_path, **extra_env) as (url, _):
        yield url


@contextlib.contextmanager
def serve_process(
    neo4j_server: Neo4jProcess, tmp_path: Path, **extra_env: str
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """``serve``, yielding the supervisor's process as well."""
    wipe_database(neo4j_server.uri)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("WW_")}
    env.update(
        WW_API_WORKERS=str(WORKERS),
        WW_API_HOST=HOST,
        WW_API_PORT=str(port),
        WW_NEO4J_URI=neo4j_server.uri,
        WW_VECTOR_BACKEND="neo4j",
        WW_DATA_DIR=str(tmp_path / "data"),
        WW_ENVIRONMENT="test",
        PYTHONUNBUFFERED="1",
        # The suite's high limit (tests/conftest.py): these tests count their own requests.
        WW_RATE_LIMIT=os.environ.get("WW_RATE_LIMIT", "100/minute"),
    )
    env.update(extra_env)
    log_path = tmp_path / "server.log"
    with log_path.open("ab") as log:
        # Its own process group: the finalizer can reach the workers even if the parent
        # dies first. cwd is tmp_path so that no stray .env is read.
        proc = subprocess.Popen(
            [sys.executable, "-m", "ww.api.server"],
            env=env,
            cwd=tmp_path,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    url = f"http://{HOST}:{port}"
    try:
        _wait_healthy(proc, url, log_path)
        yield url, proc
    finally:
        _stop(proc)
    # The parent stops its workers on SIGTERM and exits cleanly.
    assert proc.returncode == 0, log_path.read_text(errors="replace")[-4000:]


@pytest.fixture
def server(neo4j_server: Neo4jProcess, tmp_path: Path) -> Iterator[str]:
    # Every learning mechanism on, so each kind of learned state is shared and checked.
    flags = {"WW_FLAG_FSRS": "true", "WW_FLAG_ACTR": "true", "WW_FLAG_HEBBIAN": "true"}
    with serve(neo4j_server, tmp_path, **flags) as url:
        yield url


def _wait_healthy(proc: subprocess.Popen[bytes], url: str, log_path: Path) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    with httpx.Client(base_url=url, timeout=5.0) as client:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                pytest.fail(f"server exited with {proc.returncode}:\n{_tail(log_path)}")
            try:
                if client.get("/api/v1/health").status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.5)
    pytest.fail(f"server not healthy after {READY_TIMEOUT_S:.0f} s:\n{_tail(log_path)}")


def _tail(log_path: Path) -> str:
    return log_path.read_text(errors="replace")[-4000:]


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
    # Workers left behind by a parent that did not stop them cleanly.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)


@pytest.fixture
def workers(server: str) -> Iterator[list[Worker]]:
    """The workers the kernel's accepts hand connections to (at least 2, ideally all)."""
    pool = Pool(server)
    try:
        pids = pool.discover(WORKERS)
        assert len(pids) >= 2, f"every connection went to one worker: {pids}"
        yield [Worker(pid, pool) for pid in pids]
    finally:
        pool.close()


def _recall(worker: Worker, query: str, *, learn: bool = False) -> dict[str, Any]:
    body = {"query": query, "limit": 5, "learn": learn}
    result: dict[str, Any] = worker.call("POST", "/api/v1/episodes/recall", json=body).json()
    return result


def _same_recall(a: dict[str, Any], b: dict[str, Any]) -> None:
    assert [h["id"] for h in a["hits"]] == [h["id"] for h in b["hits"]]
    for ha, hb in zip(a["hits"], b["hits"], strict=True):
        for part in TIMELESS_PARTS:
            assert ha["score_parts"][part] == pytest.approx(hb["score_parts"][part], abs=1e-9)
        # Retrievability and activation decay by ~1e-6 a second between the two recalls.
        assert ha["score"] == pytest.approx(hb["score"], abs=1e-4)


def _parts(result: dict[str, Any], memory_id: str) -> dict[str, float]:
    parts: dict[str, float] = next(h for h in result["hits"] if h["id"] == memory_id)["score_parts"]
    return parts


def test_workers_share_memories_and_learning(workers: list[Worker]) -> None:
    a, b = workers[0], workers[1]
    assert a.pid != b.pid
    contents = [
        "The billing migration to the new ledger took three weeks.",
        "Alice reviewed the ledger schema before the migration.",
        "The team lunch moved to Thursday.",
        "Bob found a rounding bug in the invoice totals.",
        "The migration runbook lives in the ops wiki.",
    ]
    batch = {"episodes": [{"content": c} for c in contents]}
    created = a.call("POST", "/api/v1/episodes/batch", json=batch).json()
    ids = {e["id"] for e in created["episodes"]}
    assert len(ids) == len(contents)

    # Every worker sees the writes of A, indexed and ranked the same way.
    query = "how long did the ledger migration take?"
    via_a = _recall(a, query)
    for w in workers[1:]:
        assert w.call("GET", "/api/v1/sessions/workers").json()["pending"] == 0
        _same_recall(via_a, _recall(w, query))
    assert {h["id"] for h in via_a["hits"]} <= ids
    top = via_a["hits"][0]["id"]

    # Learning through A is what B recalls with: values, and the FF encoder each round
    # (B holds a cached encoder after the first round; the second must replace it).
    fresh = _recall(b, query)
    assert all(h["score_parts"]["spread"] == 0 for h in fresh["hits"])  # no edges yet
    before = _parts(fresh, top)
    for round_ in range(2):
        learned = _recall(a, query, learn=True)
        body = {"recall_id": learned["recall_id"], "rewards": {top: 1.0}}
        change = a.call("POST", "/api/v1/feedback", json=body).json()["changes"][0]
        assert change["value_after"] > change["value_before"], round_
        # B cannot take feedback for A's recall as its own: the recall log is shared, so
        # the repeat is recognised and changes nothing.
        assert b.call("POST", "/api/v1/feedback", json=body).json()["changes"][0] == change
        after_b, after_a = _recall(b, query), _recall(a, query)
        _same_recall(after_a, after_b)
        parts = _parts(after_b, top)
        # The same query ranks with the query-tied value: the mean of the memory's value
        # and the ratings given so far on this query (round_ + 1 of them, reward 1).
        rated = round_ + 1
        assert parts["value"] == pytest.approx(
            (change["value_after"] + rated) / (1 + rated), abs=1e-6
        )
        assert parts["activation"] > before["activation"]  # A's retrievals, seen by B
        # A's co-retrievals made Hebbian edges; B spreads activation over them.
        assert any(h["score_parts"]["spread"] > 0 for h in after_b["hits"])
        # The encoder A trained (a new stored version) is the one B scores with.
        assert change["encoder_trained"], round_
        assert parts["ff"] != before["ff"], round_
        before = parts

    # Entities written through one worker are recalled through every other.
    entity = a.call(
        "POST",
        "/api/v1/entities",
        json={"name": "Ledger", "summary": "the billing system's book of accounts"},
    ).json()
    for w in workers[1:]:
        assert w.call("GET", f"/api/v1/entities/{entity['id']}").json()["name"] == "Ledger"
        hits = w.call("POST", "/api/v1/recall", json={"query": "billing ledger"}).json()["hits"]
        assert entity["id"] in {h["id"] for h in hits if h["memory_type"] == "entity"}


def _sample(worker: Worker, name: str, labels: dict[str, str]) -> float | None:
    """One series' value as /metrics reports it from ``worker``; None when it has none."""
    text = worker.call("GET", "/metrics").text
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == name and s.labels == labels:
                return s.value
    return None


def _listed(worker: Worker) -> float:
    """GET /api/v1/episodes answered with 200, as /metrics reports it from ``worker``."""
    labels = {"method": "GET", "route": "/api/v1/episodes", "status": "200"}
    return _sample(worker, "ww_http_requests_total", labels) or 0.0


def test_metrics_add_up_every_workers_requests(workers: list[Worker]) -> None:
    """Multi-process mode: whichever worker answers /metrics, it counts every worker's."""
    # Written before any worker has counted the store: each counts it at its first scrape.
    for n in range(2):
        workers[-1].call("POST", "/api/v1/episodes", json={"content": f"metrics note {n}"})
    before = _listed(workers[0])
    for n, worker in enumerate(workers, start=1):
        for _ in range(n):
            worker.call("GET", "/api/v1/episodes")
    sent = len(workers) * (len(workers) + 1) // 2
    assert {_listed(w) - before for w in workers} == {sent}
    text = workers[-1].call("GET", "/metrics").text
    assert 'ww_circuit_state{circuit="database",state="closed"} 1.0' in text
    # The store's counts are the store's, not one per worker added up.
    episode = {"type": "episode"}
    for w in workers:
        assert _sample(w, "ww_memories", episode) == 2
        assert _sample(w, "ww_pending_vectors", episode) == 0
