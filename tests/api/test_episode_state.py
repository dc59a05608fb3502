"""``GET /api/v1/episodes/{id}/state`` over the real app: what the explorer's timeline shows
of one episode (learning state and links), and that reading it changes nothing."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any
from uuid import uuid4

import pytest
from fastapi.testclient import TestClient

from tests.api.helpers import assert_envelope, new_session_id, running_client, scratch_dir
from tests.conftest import ManualClock
from ww.embedding import OnnxEmbedder

TEXTS = [
    "The billing deploy failed because the migration timed out",
    "Ana split the billing migration into batches",
    "We had pizza after the retro",
]


@pytest.fixture(scope="module")
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture(scope="module")
def client(onnx_embedder: OnnxEmbedder, clock: ManualClock) -> Iterator[TestClient]:
    with scratch_dir() as tmp, running_client(tmp / "data", onnx_embedder, clock) as c:
        yield c


def stored(client: TestClient, session: str) -> list[str]:
    """Three episodes an hour apart, oldest first."""
    t0 = client.app.state.engine.clock()  # type: ignore[attr-defined]
    body = {
        "episodes": [
            {"content": t, "timestamp": (t0 - timedelta(hours=3 - i)).isoformat()}
            for i, t in enumerate(TEXTS)
        ]
    }
    r = client.post("/api/v1/episodes/batch", headers={"X-Session-ID": session}, json=body)
    assert r.status_code == 201, r.text
    return [e["id"] for e in r.json()["episodes"]]


def state(client: TestClient, session: str, episode_id: str) -> dict[str, Any]:
    r = client.get(f"/api/v1/episodes/{episode_id}/state", headers={"X-Session-ID": session})
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def test_a_new_episode_has_its_neighbours_and_no_learned_links(
    client: TestClient, clock: ManualClock
) -> None:
    s = new_session_id()
    first, middle, last = stored(client, s)
    fresh = state(client, s, middle)["retrievability"]
    clock.advance(days=3)
    got = state(client, s, middle)
    assert got["episode"]["id"] == middle
    assert [n["id"] for n in got["neighbours"]] == [first, last]
    assert [n["id"] for n in state(client, s, first)["neighbours"]] == [middle]
    assert got["hebbian"] == [] and got["consolidation"] == []
    assert (got["value"], got["rewards"], got["access_times"]) == (0.5, 0, [])
    # Perfect at its first review (when stored), fading since.
    assert fresh == 1.0
    assert 0.0 < got["retrievability"] < 1.0


@contextmanager
def hebbian_on(client: TestClient) -> Iterator[None]:
    """Co-retrieval learning (off by default) while the block runs."""
    url = "/api/v1/control/flags/hebbian"
    assert client.patch(url, json={"enabled": True}).status_code == 200
    try:
        yield
    finally:
        assert client.patch(url, json={"enabled": False}).status_code == 200


def test_recall_and_feedback_show_in_the_state_and_reading_changes_nothing(
    client: TestClient, clock: ManualClock
) -> None:
    s = new_session_id()
    ids = stored(client, s)
    h = {"X-Session-ID": s}
    with hebbian_on(client):
        r = client.post(
            "/api/v1/recall", headers=h, json={"query": "billing migration", "learn": True}
        )
    assert r.status_code == 200, r.text
    recall = r.json()
    hit_ids = [hit["id"] for hit in recall["hits"]]
    top = hit_ids[0]
    r = client.post(
        "/api/v1/feedback",
        headers=h,
        json={"recall_id": recall["recall_id"], "rewards": {top: 1.0}},
    )
    assert r.status_code == 200, r.text
    change = next(c for c in r.json()["changes"] if c["memory_id"] == top)
    before = state(client, s, top)
    assert before["value"] == pytest.approx(change["value_after"])
    assert before["rewards"] == 1
    assert len(before["access_times"]) == 1
    # The co-retrieved hits are linked to the top one, strongest first.
    linked = [e["memory_id"] for e in before["hebbian"]]
    assert set(linked) <= set(hit_ids) - {top} and linked
    weights = [e["weight"] for e in before["hebbian"]]
    assert weights == sorted(weights, reverse=True)
    assert set(ids) >= set(hit_ids)
    # Reading records no access and moves nothing.
    again = state(client, s, top)
    assert again == before


def test_unknown_and_other_sessions_episodes_are_404(client: TestClient) -> None:
    s = new_session_id()
    first = stored(client, s)[0]
    for session, episode in ((s, str(uuid4())), (new_session_id(), first)):
        r = client.get(f"/api/v1/episodes/{episode}/state", headers={"X-Session-ID": session})
        assert_envelope(r, 404, "not_found")
    r = client.get("/api/v1/episodes/not-a-uuid/state", headers={"X-Session-ID": s})
    assert_envelope(r, 422)
