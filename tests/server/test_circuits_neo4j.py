"""The ``database`` circuit breaker on a Neo4j that is stopped and started for real.

Neo4j is stopped; after ``WW_CIRCUIT_FAILURE_THRESHOLD`` failed requests the circuit opens
and every request gets its 503 without a call reaching Neo4j (counted on the connection
every Neo4j store runs its transactions through). Neo4j comes back; the open circuit still
refuses until the reset timeout passes on the engine's clock (moved by hand, nothing
sleeps), then one trial request closes it. The operator's reset closes it at once.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.api.helpers import assert_envelope, new_session_id, running_client, scratch_dir
from tests.conftest import ManualClock
from tests.neo4j_launcher import Neo4jProcess
from ww.embedding import OnnxEmbedder
from ww.storage.neo4j.driver import Neo4jConnection

pytestmark = pytest.mark.slow

EPISODES = "/api/v1/episodes"
DATABASE = "/api/v1/control/circuits/database"
THRESHOLD, TIMEOUT = 2, 120.0


class Transactions:
    """Counts the transactions the Neo4j stores start (every call that reaches Neo4j)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.count = 0
        real = Neo4jConnection._tx

        async def counted(conn: Neo4jConnection, write: bool, work: Any) -> Any:
            self.count += 1
            return await real(conn, write, work)

        monkeypatch.setattr(Neo4jConnection, "_tx", counted)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def client(
    own_neo4j: Neo4jProcess, onnx_embedder: OnnxEmbedder, clock: ManualClock
) -> Iterator[TestClient]:
    with (
        scratch_dir("ww-circuit-") as tmp,
        running_client(
            tmp / "data",
            onnx_embedder,
            clock,
            neo4j_uri=own_neo4j.uri,
            vector_backend="edge",
            circuit_failure_threshold=THRESHOLD,
            circuit_reset_timeout=TIMEOUT,
        ) as c,
    ):
        # The control plane polls the record store every half second, outside any circuit:
        # stopped, so the transactions counted here are the requests' own.
        app: Any = c.app
        portal: Any = getattr(c, "portal")  # noqa: B009 -- set while the client runs
        portal.call(app.state.control.stop)
        yield c


def _trip(client: TestClient, headers: dict[str, str]) -> None:
    """Requests on a stopped Neo4j until the circuit opens; each meets Neo4j's own error."""
    for _ in range(THRESHOLD):
        r = client.post(EPISODES, json={"content": "during the outage"}, headers=headers)
        error = assert_envelope(r, 503, "service_unavailable")
        assert "neo4j" in error["message"], error
    assert client.get(DATABASE).json()["state"] == "open"


def test_a_stopped_neo4j_opens_the_circuit_and_a_trial_closes_it(
    client: TestClient,
    own_neo4j: Neo4jProcess,
    clock: ManualClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    headers = {"X-Session-ID": new_session_id("circuit")}
    r = client.post(EPISODES, json={"content": "before the outage"}, headers=headers)
    assert r.status_code == 201, r.text
    first = r.json()["id"]
    calls = Transactions(monkeypatch)

    own_neo4j.stop()
    _trip(client, headers)
    assert calls.count > 0  # the failed requests did try Neo4j

    # Open: answered at once, not one transaction started.
    before = calls.count
    for method, path in [
        ("GET", f"{EPISODES}/{first}"),
        ("GET", EPISODES),
        ("POST", f"{EPISODES}/recall"),
    ]:
        body = {"query": "outage"} if method == "POST" else None
        r = client.request(method, path, json=body, headers=headers)
        error = assert_envelope(r, 503, "service_unavailable")
        assert error["message"] == "dependency unavailable: database: circuit open, retry in 120 s"
        assert r.headers["Retry-After"] == "120"
    health = client.get("/api/v1/health")
    assert health.status_code == 503
    assert health.json()["circuits"]["database"] == "open"
    assert health.json()["components"]["records"].startswith("error: database: circuit open")
    assert calls.count == before
    assert client.get(DATABASE).json()["rejected"] >= 4

    # Neo4j is back, but the circuit stays open until its timeout has passed.
    own_neo4j.start()
    assert client.get(f"{EPISODES}/{first}", headers=headers).status_code == 503
    assert calls.count == before
    clock.advance(seconds=TIMEOUT)
    assert client.get(DATABASE).json()["state"] == "half-open"
    r = client.get(f"{EPISODES}/{first}", headers=headers)  # the trial
    assert r.status_code == 200, r.text
    assert calls.count > before
    state = client.get(DATABASE).json()
    assert (state["state"], state["failures"], state["opened_at"]) == ("closed", 0, None)
    assert client.get("/api/v1/health").status_code == 200
    r = client.post(EPISODES, json={"content": "after the outage"}, headers=headers)
    assert r.status_code == 201, r.text


def test_the_operator_reset_closes_the_circuit_at_once(
    client: TestClient, own_neo4j: Neo4jProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    headers = {"X-Session-ID": new_session_id("circuit-reset")}
    own_neo4j.stop()
    _trip(client, headers)
    own_neo4j.start()
    calls = Transactions(monkeypatch)
    assert client.get(EPISODES, headers=headers).status_code == 503
    assert calls.count == 0
    # As the deployment guide's curl sends it: no Content-Type of JSON.
    r = client.post(
        DATABASE,
        content='{"action": "reset"}',
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert r.status_code == 200, r.text
    assert r.json()["state"] == "closed"
    r = client.post(EPISODES, json={"content": "after the reset"}, headers=headers)
    assert r.status_code == 201, r.text
    assert calls.count > 0
