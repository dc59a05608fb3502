"""/api/v1/control/circuits and the breakers behind a real app.

The failure here is real: the vector index (Qdrant Edge, or Neo4j under ``--server-tier``)
is closed under the running app, so every vector call fails as it would on a dead index.
(The database circuit, with Neo4j stopped for real, is tests/server/test_circuits_neo4j.py.)
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.api.helpers import assert_envelope, running_client, scratch_dir
from tests.conftest import ManualClock
from ww.control.circuits import CIRCUIT_NAMES
from ww.embedding import OnnxEmbedder
from ww.storage.factory import build_vector_index
from ww.storage.guarded import unwrap

CIRCUITS = "/api/v1/control/circuits"
THRESHOLD, TIMEOUT = 2, 60.0
# curl -d sends this Content-Type unless told otherwise: the guide's example does.
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def client(onnx_embedder: OnnxEmbedder, clock: ManualClock) -> Iterator[TestClient]:
    with (
        scratch_dir("ww-circuits-") as tmp,
        running_client(
            tmp / "data",
            onnx_embedder,
            clock,
            circuit_failure_threshold=THRESHOLD,
            circuit_reset_timeout=TIMEOUT,
        ) as c,
    ):
        yield c


def _engine(client: TestClient) -> Any:
    app: Any = client.app
    return app.state.engine


def _run(client: TestClient, fn: Any) -> Any:
    portal: Any = getattr(client, "portal")  # noqa: B009 -- set while the client runs
    return portal.call(fn)


def _reopen_index(client: TestClient) -> None:
    """The index comes back: a closed index does not reopen, so a new one of the configured
    backend is opened on the same data and put behind the same circuit."""
    engine = _engine(client)
    app: Any = client.app
    fresh = build_vector_index(app.state.settings)
    _run(client, fresh.open)
    engine.vectors = engine.circuits.guard("vectors", fresh)


def test_lists_every_circuit_closed_with_its_settings(client: TestClient) -> None:
    r = client.get(CIRCUITS)
    assert r.status_code == 200, r.text
    listed = r.json()["circuits"]
    assert [c["name"] for c in listed] == list(CIRCUIT_NAMES)
    for c in listed:
        assert c["state"] == "closed"
        # The rate limiter's Redis opens at its first failure and retries every
        # WW_REDIS_RETRY_S (5 s by default); the others follow the WW_CIRCUIT_* settings.
        expected = (1, 5.0) if c["name"] == "redis" else (THRESHOLD, TIMEOUT)
        assert (c["failures"], c["threshold"], c["reset_timeout"]) == (0, *expected)
        assert c["opened_at"] is None and c["retry_at"] is None
    one = client.get(f"{CIRCUITS}/database")
    assert one.status_code == 200 and one.json() == listed[0]
    health = client.get("/api/v1/health").json()
    assert health["circuits"] == dict.fromkeys(CIRCUIT_NAMES, "closed")


def test_unknown_circuit_and_bad_bodies_get_the_error_envelope(client: TestClient) -> None:
    error = assert_envelope(client.get(f"{CIRCUITS}/nope"), 404, "not_found")
    assert "database, vectors, embedder, redis" in error["message"]
    r = client.post(f"{CIRCUITS}/nope", content='{"action": "reset"}', headers=FORM)
    assert_envelope(r, 404, "not_found")
    for body, says in [
        ('{"action": "explode"}', "action: Input should be 'reset'"),
        ('{"action": "reset", "extra": 1}', "extra: Extra inputs are not permitted"),
        ("{}", "action: Field required"),
        ('{"action": ', "body: not valid JSON"),
        ("", "body: not valid JSON"),
        ("[1]", "body: Input should be a valid dictionary"),
    ]:
        r = client.post(f"{CIRCUITS}/database", content=body, headers=FORM)
        error = assert_envelope(r, 422, "validation_error")
        assert error["message"].startswith(says), (body, error)


def test_schema_documents_the_json_body(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    body = schema["paths"][f"{CIRCUITS}/{{name}}"]["post"]["requestBody"]
    assert body["required"] is True
    assert body["content"]["application/json"]["schema"]["required"] == ["action"]


def test_vector_index_failures_open_the_circuit_and_reset_closes_it(
    client: TestClient, clock: ManualClock
) -> None:
    engine = _engine(client)
    index = unwrap(engine.vectors)
    r = client.post("/api/v1/episodes", json={"content": "the kettle is in the attic"})
    assert r.status_code == 201, r.text
    _run(client, index.close)  # the index goes away for real

    # Recall degrades to keyword search while the index fails, and each failure counts.
    for _ in range(THRESHOLD):
        r = client.post("/api/v1/episodes/recall", json={"query": "kettle", "learn": False})
        assert r.status_code == 200 and r.json()["degraded"] is True
    vectors = client.get(f"{CIRCUITS}/vectors").json()
    assert vectors["state"] == "open"
    assert vectors["failures"] >= THRESHOLD
    assert vectors["retry_at"] is not None and vectors["opened_at"] is not None

    # Open: refused at once, without asking the index (its refusals are counted).
    r = client.get("/api/v1/admin/export")
    error = assert_envelope(r, 503, "service_unavailable")
    assert error["message"] == "dependency unavailable: vectors: circuit open, retry in 60 s"
    assert r.headers["Retry-After"] == "60"
    health = client.get("/api/v1/health")
    assert health.status_code == 503
    assert health.json()["circuits"]["vectors"] == "open"
    assert health.json()["components"]["vectors"].startswith("error: vectors: circuit open")
    assert client.get(f"{CIRCUITS}/vectors").json()["rejected"] >= 2
    r = client.post("/api/v1/episodes/recall", json={"query": "kettle", "learn": False})
    assert r.status_code == 200 and r.json()["degraded"] is True
    assert client.get(f"{CIRCUITS}/database").json()["state"] == "closed"

    # The index comes back; the open circuit still refuses until it is reset.
    _reopen_index(client)
    assert client.get("/api/v1/admin/export").status_code == 503
    r = client.post(f"{CIRCUITS}/vectors", content='{"action": "reset"}', headers=FORM)
    assert r.status_code == 200, r.text
    assert (r.json()["state"], r.json()["failures"]) == ("closed", 0)
    assert client.get("/api/v1/admin/export").status_code == 200
    r = client.post("/api/v1/episodes/recall", json={"query": "kettle", "learn": False})
    assert r.json()["degraded"] is False and r.json()["hits"]


def test_after_the_timeout_one_trial_closes_the_circuit(
    client: TestClient, clock: ManualClock
) -> None:
    index = unwrap(_engine(client).vectors)
    _run(client, index.close)
    for _ in range(THRESHOLD):
        client.get("/api/v1/health")  # a failing check counts like any call
    assert client.get(f"{CIRCUITS}/vectors").json()["state"] == "open"
    _reopen_index(client)
    clock.advance(seconds=TIMEOUT)
    assert client.get(f"{CIRCUITS}/vectors").json()["state"] == "half-open"
    health = client.get("/api/v1/health")  # its check is the trial
    assert health.status_code == 200, health.text
    assert health.json()["circuits"]["vectors"] == "closed"
