"""Prometheus metrics at /metrics: what moves after real requests, with which labels, and
who may read them (``WW_METRICS_PUBLIC``); and the access line each request writes."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry, multiprocess
from starlette.types import Receive, Scope, Send

from tests.api.helpers import (
    Samples,
    running_client,
    sample_value,
    scrape_metrics,
    scratch_dir,
)
from tests.conftest import ManualClock
from ww.api.metrics import MULTIPROC_ENV, forget_dead_workers
from ww.api.observe import RequestObserver, RouteTemplates
from ww.embedding import OnnxEmbedder
from ww.logs import ACCESS_LOGGER, JsonFormatter

KEY = "ww_metrics-test-user-key-000001"
ADMIN = "ww_metrics-test-admin-key-00002"
SESSION = "metrics-session-7f3a"
CONTENT = "the heron nests by the old mill pond"


def _scrape(client: TestClient, **headers: str) -> Samples:
    return scrape_metrics(client, **(headers or {"X-API-Key": KEY}))


_value = sample_value


@pytest.fixture(scope="module")
def client(onnx_embedder: OnnxEmbedder) -> Iterator[TestClient]:
    with (
        scratch_dir() as tmp,
        running_client(
            tmp / "data", onnx_embedder, ManualClock(), api_key=KEY, admin_key=ADMIN
        ) as c,
    ):
        yield c


def test_requests_are_counted_by_route_template_and_status(client: TestClient) -> None:
    h = {"X-API-Key": KEY, "X-Session-ID": SESSION}
    before = _scrape(client)
    made = client.post("/api/v1/episodes", json={"content": CONTENT}, headers=h)
    assert made.status_code == 201
    episode_id = made.json()["id"]
    assert client.get(f"/api/v1/episodes/{episode_id}", headers=h).status_code == 200
    assert client.post("/api/v1/recall", json={"query": "heron"}, headers=h).status_code == 200
    assert client.get(f"/api/v1/episodes/{episode_id}").status_code == 401
    after = _scrape(client)

    def moved(name: str, **labels: str) -> float:
        return _value(after, name, **labels) - _value(before, name, **labels)

    one = "/api/v1/episodes/{episode_id}"
    assert (
        moved("ww_http_requests_total", method="POST", route="/api/v1/episodes", status="201") == 1
    )
    assert moved("ww_http_requests_total", method="GET", route=one, status="200") == 1
    # Refused before routing, still counted under its template.
    assert moved("ww_http_requests_total", method="GET", route=one, status="401") == 1
    assert moved("ww_http_requests_total", method="POST", route="/api/v1/recall", status="200") == 1
    assert (
        moved(
            "ww_http_request_duration_seconds_count",
            method="POST",
            route="/api/v1/recall",
            status="200",
        )
        == 1
    )
    # The stores, the index and the embedder were called through their circuits.
    circuits = {
        dict(labels)["circuit"]
        for (name, labels), v in after.items()
        if name == "ww_store_operation_duration_seconds_count" and v > 0
    }
    assert {"database", "vectors", "embedder"} <= circuits
    # The episode was embedded by the model, the recall's query too (or found cached).
    assert moved("ww_embedding_items_embedded") >= 1
    assert moved("ww_embedding_cache_misses") + moved("ww_embedding_cache_hits") >= 2
    assert _value(after, "ww_embedding_batches") >= 1
    assert _value(after, "ww_circuit_state", circuit="database", state="closed") == 1
    assert _value(after, "ww_circuit_state", circuit="database", state="open") == 0
    # No id, session, key or content in any label value.
    text = client.get("/metrics", headers={"X-API-Key": KEY}).text
    for secret in (episode_id, SESSION, KEY, ADMIN, "heron"):
        assert secret not in text


def test_an_unknown_path_is_one_label_not_its_text(client: TestClient) -> None:
    before = _scrape(client)
    assert client.get("/api/v1/no-such-route-4711", headers={"X-API-Key": KEY}).status_code == 404
    after = _scrape(client)
    key = (
        "ww_http_requests_total",
        frozenset({"method": "GET", "route": "unmatched", "status": "404"}.items()),
    )
    assert after[key] - before.get(key, 0.0) == 1
    assert not any("4711" in v for _, labels in after for _, v in labels)


def test_metrics_need_a_credential_unless_public(
    client: TestClient, onnx_embedder: OnnxEmbedder
) -> None:
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", headers={"X-Admin-Key": ADMIN}).status_code == 200
    with (
        scratch_dir() as tmp,
        running_client(
            tmp / "data", onnx_embedder, ManualClock(), api_key=KEY, metrics_public=True
        ) as public,
    ):
        assert public.get("/metrics").status_code == 200
        assert public.get("/api/v1/episodes").status_code == 401


def test_rate_limit_rejections_are_counted(onnx_embedder: OnnxEmbedder) -> None:
    with (
        scratch_dir() as tmp,
        running_client(
            tmp / "data", onnx_embedder, ManualClock(), api_key=KEY, rate_limit="2/minute"
        ) as c,
    ):
        before = _scrape(c)
        h = {"X-API-Key": KEY, "X-Session-ID": SESSION}
        statuses = [c.get("/api/v1/episodes", headers=h).status_code for _ in range(3)]
        assert statuses == [200, 200, 429]
        after = _scrape(c)
        key = ("ww_rate_limit_rejections_total", frozenset({"group": "episodes"}.items()))
        assert after[key] - before.get(key, 0.0) == 1


def test_each_request_has_one_access_line(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    h = {"X-API-Key": KEY, "X-Session-ID": SESSION, "X-Request-ID": "req-access-1"}
    with caplog.at_level(logging.INFO, logger=ACCESS_LOGGER):
        made = client.post("/api/v1/episodes", json={"content": CONTENT}, headers=h)
        client.get(f"/api/v1/episodes/{made.json()['id']}", headers={"X-Session-ID": "bad id!"})
    lines = [r for r in caplog.records if r.name == ACCESS_LOGGER]
    assert len(lines) == 2
    first, refused = (json.loads(JsonFormatter().format(r)) for r in lines)
    assert first["request_id"] == "req-access-1"
    assert (first["method"], first["route"], first["status"]) == ("POST", "/api/v1/episodes", 201)
    assert (first["principal"], first["session"]) == ("WW_API_KEY", SESSION)
    assert first["duration_ms"] >= 0
    # Refused before routing: its template, no principal, and no malformed session text.
    assert (refused["route"], refused["status"]) == ("/api/v1/episodes/{episode_id}", 401)
    assert "principal" not in refused and "session" not in refused
    for line in (first, refused):
        assert CONTENT not in json.dumps(line) and KEY not in json.dumps(line)


def test_a_dead_workers_live_gauges_are_forgotten(tmp_path: Path) -> None:
    """Multi-process mode: a worker that exited leaves its counters, not its circuit gauge."""
    worker = (
        "from ww.api import metrics\n"
        "metrics.CIRCUIT_STATE.labels('database', 'open').set(1)\n"
        "metrics.REQUESTS.labels('GET', '/x', '200').inc()\n"
    )
    env = {**os.environ, MULTIPROC_ENV: str(tmp_path)}
    done = subprocess.run([sys.executable, "-c", worker], env=env, capture_output=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert list(tmp_path.glob("gauge_livemax_*.db"))
    forget_dead_workers(str(tmp_path))
    assert not list(tmp_path.glob("gauge_livemax_*.db"))
    assert list(tmp_path.glob("counter_*.db"))
    # A live process's files stay.
    mine = tmp_path / f"gauge_livemax_{os.getpid()}.db"
    mine.write_bytes(b"")
    forget_dead_workers(str(tmp_path))
    assert mine.exists()


def test_store_counts_show_the_latest_workers_value_not_a_sum(tmp_path: Path) -> None:
    """Multi-process mode: every worker counts the same store, so the gauges show the count
    read last (a sum would multiply it by the workers, a max hide a shrinking backlog)."""
    env = {**os.environ, MULTIPROC_ENV: str(tmp_path)}
    for pending in (40, 3):  # two workers, one after the other
        worker = (
            "from ww.api import metrics\n"
            f"metrics.PENDING_VECTORS.labels('episode').set({pending})\n"
            "metrics.MEMORIES.labels('episode').set(50)\n"
        )
        done = subprocess.run(
            [sys.executable, "-c", worker], env=env, capture_output=True, timeout=60
        )
        assert done.returncode == 0, done.stderr
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, str(tmp_path))  # type: ignore[no-untyped-call]
    assert registry.get_sample_value("ww_pending_vectors", {"type": "episode"}) == 3
    assert registry.get_sample_value("ww_memories", {"type": "episode"}) == 50
    forget_dead_workers(str(tmp_path))  # both have exited: their counts go
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, str(tmp_path))  # type: ignore[no-untyped-call]
    assert registry.get_sample_value("ww_pending_vectors", {"type": "episode"}) is None


def test_metrics_answer_during_maintenance(client: TestClient) -> None:
    admin = {"X-Admin-Key": ADMIN}
    r = client.patch(
        "/api/v1/control/flags/maintenance_mode", json={"enabled": True}, headers=admin
    )
    assert r.status_code == 200, r.text
    try:
        assert client.get("/api/v1/episodes", headers={"X-API-Key": KEY}).status_code == 503
        samples = _scrape(client)
        key = frozenset({"method": "GET", "route": "/api/v1/episodes", "status": "503"}.items())
        assert samples[("ww_http_requests_total", key)] >= 1
    finally:
        client.patch(
            "/api/v1/control/flags/maintenance_mode", json={"enabled": False}, headers=admin
        )


def test_requests_refresh_the_gauges_at_most_once_per_interval() -> None:
    """Reading every breaker and the embedder on each request costs; the gauges are kept
    current at most once per interval (the scrape refreshes them itself)."""
    now = [100.0]
    refreshed: list[float] = []

    async def ok(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    app = RequestObserver(
        ok,
        RouteTemplates([("/ping", ["GET"])]),
        gauges=lambda: refreshed.append(now[0]),
        gauge_interval=1.0,
        clock=lambda: now[0],
    )
    c = TestClient(app)  # no lifespan: the app answers http only
    for step in (0.0, 0.5, 0.49, 0.01, 0.2, 3.0):
        now[0] += step
        assert c.get("/ping").status_code == 204
    assert refreshed == [100.0, 101.0, 104.2]
