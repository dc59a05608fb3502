"""``/api/v1/graph`` and ``/api/v1/dynamics/*``, the explorer's reads, end to end (on the
server tier too: the app's stores follow ``--server-tier``)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from itertools import pairwise
from typing import Any
from uuid import uuid4

import pytest
from fastapi.testclient import TestClient

from tests.api.helpers import (
    assert_envelope,
    new_session_id,
    parse_ts,
    running_client,
    scratch_dir,
)
from tests.conftest import ManualClock
from tests.engine.topics import TOPICS
from tests.factories import T0
from ww.embedding import OnnxEmbedder
from ww.engine.dynamics import Fsrs
from ww.models import FSRSState

_CLOCK = ManualClock()


@pytest.fixture(scope="module")
def shared_client(onnx_embedder: OnnxEmbedder) -> Iterator[TestClient]:
    with scratch_dir() as tmp, running_client(tmp / "data", onnx_embedder, _CLOCK) as c:
        yield c


@pytest.fixture
def client(shared_client: TestClient) -> Iterator[TestClient]:
    _CLOCK.now = T0
    shared_client.headers["X-Session-ID"] = new_session_id("explore")
    yield shared_client
    del shared_client.headers["X-Session-ID"]


def ok(r: Any, status: int = 200) -> Any:
    assert r.status_code == status, r.text
    return r.json()


def entity(client: TestClient, name: str) -> str:
    return str(ok(client.post("/api/v1/entities", json={"name": name}), 201)["id"])


def relate(client: TestClient, a: str, b: str, weight: float = 0.5) -> str:
    body = {"target_id": b, "weight": weight}
    return str(ok(client.post(f"/api/v1/entities/{a}/relations", json=body), 201)["id"])


def episode(client: TestClient, content: str) -> str:
    return str(ok(client.post("/api/v1/episodes", json={"content": content}), 201)["id"])


# -- graph ---------------------------------------------------------------------------------


def test_graph_has_the_current_entities_and_the_relations_between_them(
    client: TestClient,
) -> None:
    a, b, c = (entity(client, n) for n in ("Ada", "Bob", "Cy"))
    ab, bc = relate(client, a, b, 0.9), relate(client, b, c, 0.4)
    _CLOCK.now = T0 + timedelta(hours=1)
    new_c = ok(client.post(f"/api/v1/entities/{c}/supersede", json={"name": "Cy 2"}), 201)["id"]
    got = ok(client.get("/api/v1/graph"))
    assert {n["id"] for n in got["nodes"]} == {a, b, new_c}
    # Superseding carries the relation over to the new version; the one to the closed
    # version is not drawn.
    edges = {(e["source_id"], e["target_id"]): e for e in got["edges"]}
    assert set(edges) == {(a, b), (b, new_c)}
    assert edges[a, b]["id"] == ab and edges[a, b]["weight"] == pytest.approx(0.9)
    assert edges[b, new_c]["id"] != bc
    assert got["truncated"] is False


def test_graph_limit_shows_the_newest_and_says_it_is_truncated(client: TestClient) -> None:
    ids = []
    for k, name in enumerate(("old", "mid", "new")):
        _CLOCK.now = T0 + timedelta(minutes=k)
        ids.append(entity(client, name))
    relate(client, ids[0], ids[1])
    mid_new = relate(client, ids[1], ids[2])
    got = ok(client.get("/api/v1/graph", params={"limit": 2}))
    assert [n["name"] for n in got["nodes"]] == ["new", "mid"]
    assert [e["id"] for e in got["edges"]] == [mid_new]
    assert got["truncated"] is True


def test_graph_of_an_empty_session_is_empty(client: TestClient) -> None:
    assert ok(client.get("/api/v1/graph")) == {"nodes": [], "edges": [], "truncated": False}


@pytest.mark.parametrize("limit", ["0", "1001", "many"])
def test_graph_refuses_a_bad_limit(client: TestClient, limit: str) -> None:
    assert_envelope(client.get("/api/v1/graph", params={"limit": limit}), 422)


# -- retrievability ------------------------------------------------------------------------


def curve_url(memory_id: str) -> str:
    return f"/api/v1/dynamics/memories/{memory_id}/retrievability"


def test_episode_curve_starts_at_one_and_falls_through_now(client: TestClient) -> None:
    ep = episode(client, "the kettle is in the left cupboard")
    _CLOCK.now = T0 + timedelta(days=10)
    got = ok(client.get(curve_url(ep), params={"days": 20, "points": 31}))
    assert got["kind"] == "episode" and got["memory_id"] == ep
    points = got["points"]
    assert len(points) == 31
    assert parse_ts(points[0]["at"]) == T0 and points[0]["retrievability"] == 1.0
    assert parse_ts(points[-1]["at"]) == T0 + timedelta(days=30)
    rs = [p["retrievability"] for p in points]
    assert all(x >= y for x, y in pairwise(rs)) and rs[-1] < rs[0]
    # Evenly spaced over 30 days: the 11th point is now, where the curve meets the stored
    # state's retrievability as the engine computes it.
    assert parse_ts(points[10]["at"]) == _CLOCK.now
    state = FSRSState.model_validate(got["fsrs"])
    expected = Fsrs().retrievability(state, _CLOCK.now)
    assert points[10]["retrievability"] == pytest.approx(expected)
    assert got["retrievability"] == pytest.approx(expected)
    assert "R(t)" in got["formula"]


def test_a_review_restarts_the_curve_and_recall_shows_as_an_access(client: TestClient) -> None:
    ep = episode(client, "the spare key hangs behind the garage door")
    before = ok(client.get(curve_url(ep)))
    _CLOCK.now = T0 + timedelta(days=3)
    ok(client.post(f"/api/v1/episodes/{ep}/mark-important", json={"importance": 0.9}))
    r = client.post("/api/v1/episodes/recall", json={"query": "spare key garage", "learn": True})
    ok(r)
    after = ok(client.get(curve_url(ep)))
    assert parse_ts(after["points"][0]["at"]) == _CLOCK.now
    assert after["fsrs"]["stability"] > before["fsrs"]["stability"]
    assert [parse_ts(t) for t in after["accesses"]][-1] == _CLOCK.now


def test_entity_curve(client: TestClient) -> None:
    e = entity(client, "Dana")
    got = ok(client.get(curve_url(e), params={"points": 2}))
    assert got["kind"] == "entity" and len(got["points"]) == 2
    assert got["points"][0]["retrievability"] == 1.0


def test_curve_of_an_unknown_or_foreign_memory_is_404(client: TestClient) -> None:
    assert_envelope(client.get(curve_url(str(uuid4()))), 404)
    ep = episode(client, "only mine")
    client.headers["X-Session-ID"] = new_session_id("other")
    assert_envelope(client.get(curve_url(ep)), 404)


@pytest.mark.parametrize(
    "params", [{"points": 1}, {"points": 501}, {"days": 0}, {"days": 4000}, {"days": "soon"}]
)
def test_curve_refuses_bad_parameters(client: TestClient, params: dict[str, Any]) -> None:
    ep = episode(client, "a memory")
    assert_envelope(client.get(curve_url(ep), params=params), 422)


def test_curve_refuses_a_malformed_id(client: TestClient) -> None:
    assert_envelope(client.get(curve_url("not-a-uuid")), 422)


# -- distribution --------------------------------------------------------------------------

DIST = "/api/v1/dynamics/distribution"


def test_distribution_counts_every_live_episode(client: TestClient) -> None:
    ids = [episode(client, f"note number {k} about the garden") for k in range(5)]
    same = ok(client.get(DIST, params={"bins": 4}))
    assert same["episodes"] == 5 and same["truncated"] is False
    assert same["value"]["edges"] == pytest.approx([0.0, 0.25, 0.5, 0.75, 1.0])
    # Every new episode has value 0.5 (the default) and the same stability: one bin.
    assert same["value"]["counts"] == [0, 0, 5, 0]
    assert same["stability"]["counts"] == [5] and len(same["stability"]["edges"]) == 2
    ok(client.post(f"/api/v1/episodes/{ids[0]}/mark-important", json={"importance": 0.9}))
    ok(client.patch(f"/api/v1/episodes/{ids[1]}", json={"archived": True}))
    spread = ok(client.get(DIST, params={"bins": 4}))
    assert spread["episodes"] == 4
    stability = spread["stability"]
    assert len(stability["edges"]) == 5 and sum(stability["counts"]) == 4
    assert stability["counts"][0] == 3 and stability["counts"][-1] == 1


def test_distribution_of_an_empty_session(client: TestClient) -> None:
    got = ok(client.get(DIST))
    assert got["episodes"] == 0 and got["value"] == {"edges": [], "counts": []}


@pytest.mark.parametrize("bins", ["1", "51", "x"])
def test_distribution_refuses_bad_bins(client: TestClient, bins: str) -> None:
    assert_envelope(client.get(DIST, params={"bins": bins}), 422)


# -- last consolidation --------------------------------------------------------------------

LAST = "/api/v1/dynamics/consolidation"


def test_last_consolidation_shows_what_the_run_merged(client: TestClient) -> None:
    assert ok(client.get(LAST)) == {"at": None, "entities": [], "duplicates": []}
    body = {"episodes": [{"content": t} for texts in TOPICS.values() for t in texts]}
    ok(client.post("/api/v1/episodes/batch", json=body), 201)
    original = episode(client, "I baked sourdough bread with a long overnight fermentation!")
    _CLOCK.now = T0 + timedelta(hours=2)
    copy = episode(client, "I baked sourdough bread with a long overnight fermentation!")
    _CLOCK.now = T0 + timedelta(days=1)
    report = ok(client.post("/api/v1/consolidate", json={"min_cluster_size": 3}))
    got = ok(client.get(LAST))
    assert parse_ts(got["at"]) == _CLOCK.now
    assert {(e["entity_id"], e["name"], frozenset(e["members"])) for e in got["entities"]} == {
        (e["entity_id"], e["name"], frozenset(e["members"])) for e in report["entities"]
    }
    assert got["duplicates"] == [{"duplicate_id": copy, "original_id": original}]
    assert got["duplicates"] == report["duplicates_merged"]
    # A second run with nothing new writes nothing: the answer stays the first run's.
    _CLOCK.now = T0 + timedelta(days=2)
    ok(client.post("/api/v1/consolidate", json={"min_cluster_size": 3}))
    assert ok(client.get(LAST)) == got
