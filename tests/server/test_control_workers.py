"""The control plane across ``WW_API_WORKERS=4`` on the server tier: a flag set through one
worker, and an emergency level, reach every worker (each polls the shared store's change
counter every 0.5 s). Workers are told apart by ``worker_pid`` in ``/api/v1/health``."""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx
import pytest

from tests.server.test_workers import SESSION, Worker, server, workers  # noqa: F401

pytestmark = pytest.mark.slow

# Generous: bounds the wait loops; the poll's own period is 0.5 s.
SPREAD_BOUND_S = 15.0


def _send(worker: Worker, method: str, path: str, **kw: object) -> httpx.Response:
    client = worker.pool.on(worker.pid)
    response = client.request(method, path, headers=SESSION, **kw)  # type: ignore[arg-type]
    assert worker.pool._pid(client) == worker.pid, "the request's connection changed worker"
    return response


def _everywhere(every: list[Worker], seen: Callable[[Worker], bool]) -> None:
    """Wait until ``seen`` holds on every worker."""
    deadline = time.monotonic() + SPREAD_BOUND_S
    waiting = list(every)
    while waiting:
        waiting = [w for w in waiting if not seen(w)]
        assert time.monotonic() < deadline, f"workers {[w.pid for w in waiting]} never saw it"
        time.sleep(0.1)


def test_flags_and_emergency_levels_reach_every_worker(workers: list[Worker]) -> None:  # noqa: F811
    """A flag PATCHed on one worker, then LIMITED set on another: every worker follows."""
    first = workers[0]
    r = _send(first, "PATCH", "/api/v1/control/flags/telemetry", json={"enabled": True})
    assert r.status_code == 200, r.text

    def sees(w: Worker) -> bool:
        flag = _send(w, "GET", "/api/v1/control/flags/telemetry").json()
        return bool(flag["enabled"]) and flag["source"] == "runtime"

    assert sees(first)  # at once in the worker that set it
    _everywhere(workers, sees)

    # LIMITED, set on another worker, blocks writes everywhere; recover lifts it.
    body = {"level": "LIMITED", "reason": "failover drill"}
    r = _send(workers[-1], "POST", "/api/v1/control/emergency/panic", json=body)
    assert r.status_code == 200, r.text

    def refuses(w: Worker) -> bool:
        health = _send(w, "GET", "/api/v1/health").json()["control"]
        return bool(health["level"] == "LIMITED")

    _everywhere(workers, refuses)
    for w in workers:
        r = _send(w, "POST", "/api/v1/episodes", json={"content": "refused"})
        assert r.status_code == 503, (w.pid, r.text)
        assert r.json()["error"]["code"] == "emergency_limited"
        assert "failover drill" in r.json()["error"]["message"]
        assert _send(w, "GET", "/api/v1/episodes").status_code == 200
    r = _send(workers[0], "POST", "/api/v1/control/emergency/recover", json={"level": "NONE"})
    assert r.status_code == 200, r.text
    _everywhere(
        workers, lambda w: _send(w, "GET", "/api/v1/health").json()["control"]["level"] == "NONE"
    )
    for w in workers:
        r = _send(w, "POST", "/api/v1/episodes", json={"content": f"stored by {w.pid}"})
        assert r.status_code == 201, (w.pid, r.text)
