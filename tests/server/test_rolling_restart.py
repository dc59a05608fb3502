"""A rolling restart under load loses no request: SIGHUP to ``python -m ww.api.server``
with ``WW_API_WORKERS=2`` on the server tier replaces every worker, one at a time, while
clients keep writing and recalling.

The clients open a connection per request (``Connection: close``), as the load balancer of
``docker-compose.prod.yml`` does towards its replicas. Every answer must be a success (no
connection error, no 5xx, nothing but 201 and 200), the old workers must all be gone and
new ones serving by the end, and every write the clients saw acknowledged must be there
afterwards, by id and by recall.
"""

from __future__ import annotations

import os
import random
import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from tests.neo4j_launcher import Neo4jProcess
from tests.server.test_workers import serve_process

pytestmark = pytest.mark.slow

WORKERS = 2
CLIENTS = 4
SESSION = {"X-Session-ID": "rolling"}
# Bounds on the loop, not timings asserted: each client stops after this many requests, and
# the restart must have ended before the deadline (each new worker loads the model).
MAX_REQUESTS = 3000
RESTART_DEADLINE_S = 300.0
# Requests each client sends once the restart is over, so the new workers serve load too.
AFTER_RESTART = 10
WORDS = (
    "amber basalt cedar delta ember fjord garnet harbor indigo juniper kestrel lagoon "
    "meadow nectar onyx pewter quartz river saffron tundra umber violet willow xenon "
    "yarrow zephyr anchor beacon canyon dune estuary falcon glacier heron island jetty"
)


@dataclass
class Load:
    """What the clients saw: acknowledged writes, failures, and the workers that answered."""

    url: str
    stop: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)
    written: dict[str, str] = field(default_factory=dict)  # id -> content
    failures: list[str] = field(default_factory=list)
    answered_by: set[int] = field(default_factory=set)
    completed: int = 0

    def client(self, number: int) -> None:
        rng = random.Random(number)
        vocabulary = WORDS.split()
        headers = {**SESSION, "Connection": "close"}
        with httpx.Client(base_url=self.url, timeout=60.0, headers=headers) as http:
            for i in range(MAX_REQUESTS):
                if self.stop.is_set():
                    return
                words = " ".join(rng.sample(vocabulary, 6))
                try:
                    self._one(http, i, f"client {number} wrote {words}")
                except httpx.TransportError as exc:
                    with self.lock:
                        self.failures.append(f"{type(exc).__name__}: {exc}")

    def _one(self, http: httpx.Client, i: int, content: str) -> None:
        if i % 3 == 0:
            r = http.post("/api/v1/episodes", json={"content": content})
            ok = r.status_code == 201
        elif i % 3 == 1:
            r = http.post("/api/v1/episodes/recall", json={"query": content, "limit": 3})
            ok = r.status_code == 200
        else:
            r = http.get("/api/v1/health")
            ok = r.status_code == 200
        with self.lock:
            self.completed += 1
            if not ok:
                self.failures.append(f"{r.request.method} {r.request.url.path}: {r.status_code}")
            elif i % 3 == 0:
                self.written[r.json()["id"]] = content
            elif i % 3 == 2:
                self.answered_by.add(int(r.json()["worker_pid"]))

    def count(self) -> int:
        with self.lock:
            return self.completed


def worker_pids(supervisor: int) -> set[int]:
    """The supervisor's worker processes (multiprocessing's spawned children; not its
    resource tracker)."""
    children = Path(f"/proc/{supervisor}/task/{supervisor}/children").read_text().split()
    pids = set()
    for child in map(int, children):
        try:
            cmdline = Path(f"/proc/{child}/cmdline").read_bytes()
        except OSError:
            continue  # ended between the two reads
        if b"spawn_main" in cmdline:
            pids.add(child)
    return pids


@pytest.fixture
def running(neo4j_server: Neo4jProcess, tmp_path: Path) -> Iterator[tuple[str, int, Path]]:
    with serve_process(neo4j_server, tmp_path, WW_API_WORKERS=str(WORKERS)) as (url, proc):
        yield url, proc.pid, tmp_path / "server.log"


def _wait_for(load: Load, target: int, log: Path) -> None:
    deadline = time.monotonic() + RESTART_DEADLINE_S
    while load.count() < target:
        assert time.monotonic() < deadline, f"load stalled:\n{_tail(log)}"
        time.sleep(0.2)


def _tail(log: Path) -> str:
    return log.read_text(errors="replace")[-4000:]


def test_a_rolling_restart_under_load_fails_no_request(running: tuple[str, int, Path]) -> None:
    url, supervisor, log = running
    old = worker_pids(supervisor)
    assert len(old) == WORKERS
    load = Load(url)
    threads = [threading.Thread(target=load.client, args=(n,)) for n in range(CLIENTS)]
    for t in threads:
        t.start()
    try:
        _wait_for(load, 5 * CLIENTS, log)
        sent_before = load.count()
        os.kill(supervisor, signal.SIGHUP)
        deadline = time.monotonic() + RESTART_DEADLINE_S
        while True:
            now = worker_pids(supervisor)
            if len(now) == WORKERS and not now & old:
                break
            assert time.monotonic() < deadline, f"restart did not finish: {now}\n{_tail(log)}"
            time.sleep(0.2)
        during = load.count() - sent_before
        _wait_for(load, load.count() + AFTER_RESTART * CLIENTS, log)
    finally:
        load.stop.set()
        for t in threads:
            t.join()

    assert load.failures == [], load.failures[:20]
    assert during > 0, "no request was answered while the workers were replaced"
    assert load.answered_by & old and load.answered_by & now, (load.answered_by, old, now)
    assert load.written
    with httpx.Client(base_url=url, timeout=60.0, headers=SESSION) as http:
        for memory_id, content in load.written.items():
            got = http.get(f"/api/v1/episodes/{memory_id}")
            assert got.status_code == 200, (memory_id, got.text)
            assert got.json()["content"] == content
            body = {"query": content, "limit": 5}
            hits = http.post("/api/v1/episodes/recall", json=body).json()["hits"]
            assert memory_id in {h["id"] for h in hits}, memory_id
