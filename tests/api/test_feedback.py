"""``POST /api/v1/feedback`` over the real app: changes, idempotency, 404/422, sessions."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from uuid import uuid4

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.api.helpers import assert_envelope, new_session_id, running_client, scratch_dir
from tests.conftest import ManualClock
from ww.embedding import OnnxEmbedder

TEXTS = [
    "The billing deploy failed because the migration timed out",
    "Ana split the billing migration into batches",
    "We had pizza after the retro",
]


@pytest.fixture(scope="module")
def client(onnx_embedder: OnnxEmbedder) -> Iterator[TestClient]:
    with scratch_dir() as tmp, running_client(tmp / "data", onnx_embedder, ManualClock()) as c:
        yield c


def recall(client: TestClient, session: str, learn: bool = True) -> dict[str, Any]:
    h = {"X-Session-ID": session}
    r = client.post(
        "/api/v1/episodes/batch", headers=h, json={"episodes": [{"content": t} for t in TEXTS]}
    )
    assert r.status_code == 201, r.text
    r = client.post(
        "/api/v1/episodes/recall",
        headers=h,
        json={"query": "why did the billing deploy fail?", "limit": 3, "learn": learn},
    )
    assert r.status_code == 200, r.text
    result: dict[str, Any] = r.json()
    return result


def post(client: TestClient, session: str, body: Any) -> Any:
    return client.post("/api/v1/feedback", headers={"X-Session-ID": session}, json=body)


def test_reward_for_a_recall_changes_each_memory_once(client: TestClient) -> None:
    s = new_session_id()
    res = recall(client, s)
    ids = [h["id"] for h in res["hits"]]
    body = {"recall_id": res["recall_id"], "reward": 0.0, "rewards": {ids[0]: 1.0}}
    r = post(client, s, body)
    assert r.status_code == 200, r.text
    changes = r.json()["changes"]
    assert [c["memory_id"] for c in changes] == ids  # rank order
    assert changes[0]["reward"] == 1.0 and changes[0]["error"] == 0.5
    assert changes[0]["value_after"] > changes[0]["value_before"] == 0.5
    assert all(c["reward"] == 0.0 and c["value_after"] < 0.5 for c in changes[1:])
    assert all(c["labile"] for c in changes)
    # the episode shows its learned value
    ep = client.get(f"/api/v1/episodes/{ids[0]}", headers={"X-Session-ID": s}).json()
    assert ep["value"] == pytest.approx(changes[0]["value_after"])
    # idempotent: the same answer, nothing changes
    again = post(client, s, {**body, "reward": 1.0})
    assert again.json() == r.json()
    ep2 = client.get(f"/api/v1/episodes/{ids[0]}", headers={"X-Session-ID": s}).json()
    assert ep2 == ep


def test_learned_value_shows_in_later_recalls(client: TestClient) -> None:
    s = new_session_id()
    res = recall(client, s)
    top = res["hits"][0]["id"]
    post(client, s, {"recall_id": res["recall_id"], "rewards": {top: 1.0}})
    later = client.post(
        "/api/v1/episodes/recall",
        headers={"X-Session-ID": s},
        json={"query": "why did the billing deploy fail?", "limit": 3, "learn": False},
    ).json()
    parts = {h["id"]: h["score_parts"] for h in later["hits"]}
    assert parts[top]["value"] > 0.5
    assert parts[top]["ff"] > 0.5  # the FF encoder learned the pair


def test_unknown_foreign_and_read_only_recalls_are_404(client: TestClient) -> None:
    s, other = new_session_id(), new_session_id()
    res = recall(client, s)
    assert_envelope(post(client, s, {"recall_id": str(uuid4()), "reward": 1}), 404, "not_found")
    # another session's recall id is not found there, and nothing changes in its owner
    assert_envelope(post(client, other, {"recall_id": res["recall_id"], "reward": 1}), 404)
    ok = post(client, s, {"recall_id": res["recall_id"], "reward": 1})
    assert ok.status_code == 200 and all(c["error"] == 0.5 for c in ok.json()["changes"])
    ro = recall(client, new_session_id(), learn=False)
    assert_envelope(post(client, s, {"recall_id": ro["recall_id"], "reward": 1}), 404)
    stranger = {"recall_id": res["recall_id"], "rewards": {str(uuid4()): 1.0}}
    assert_envelope(post(client, s, stranger), 404, "not_found")


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"recall_id": "not-a-uuid", "reward": 1},
        {"recall_id": "00000000-0000-4000-8000-000000000000"},
        {"recall_id": "00000000-0000-4000-8000-000000000000", "rewards": {}},
        {"recall_id": "00000000-0000-4000-8000-000000000000", "reward": 1.5},
        {"recall_id": "00000000-0000-4000-8000-000000000000", "reward": -0.1},
        {"recall_id": "00000000-0000-4000-8000-000000000000", "rewards": {"x": 1}},
        {"recall_id": "00000000-0000-4000-8000-000000000000", "reward": 1, "extra": 1},
        [],
    ],
)
def test_bad_bodies_are_422(client: TestClient, body: Any) -> None:
    assert_envelope(post(client, "default", body), 422, "validation_error")


def test_bad_session_header_is_400(client: TestClient) -> None:
    body = {"recall_id": str(uuid4()), "reward": 1}
    r = client.post("/api/v1/feedback", headers={"X-Session-ID": "bad id!"}, json=body)
    assert_envelope(r, 400, "invalid_session_id")


@settings(max_examples=10, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    rewards=st.lists(st.floats(0.0, 1.0), min_size=1, max_size=3),
    recall_wide=st.none() | st.floats(0.0, 1.0),
)
def test_feedback_is_idempotent(
    client: TestClient, rewards: list[float], recall_wide: float | None
) -> None:
    s = new_session_id("idem")
    res = recall(client, s)
    ids = [h["id"] for h in res["hits"]]
    body: dict[str, Any] = {
        "recall_id": res["recall_id"],
        "rewards": dict(zip(ids, rewards, strict=False)),
    }
    if recall_wide is not None:
        body["reward"] = recall_wide
    first = post(client, s, body)
    assert first.status_code == 200, first.text
    state = [client.get(f"/api/v1/episodes/{i}", headers={"X-Session-ID": s}).json() for i in ids]
    again = post(client, s, body)
    assert again.json() == first.json()
    assert [
        client.get(f"/api/v1/episodes/{i}", headers={"X-Session-ID": s}).json() for i in ids
    ] == state


def test_learning_survives_a_restart_of_the_service(onnx_embedder: OnnxEmbedder) -> None:
    clock = ManualClock()
    s = "restart"
    query = {"query": "why did the billing deploy fail?", "limit": 3, "learn": False}

    def hits(c: TestClient) -> list[tuple[Any, ...]]:
        r = c.post("/api/v1/episodes/recall", headers={"X-Session-ID": s}, json=query)
        return [(h["id"], h["score"], h["score_parts"]) for h in r.json()["hits"]]

    with scratch_dir() as tmp:
        with running_client(tmp / "data", onnx_embedder, clock) as c:
            res = recall(c, s)
            ids = [h["id"] for h in res["hits"]]
            body = {"recall_id": res["recall_id"], "rewards": {ids[0]: 1.0, ids[1]: 0.0}}
            first = post(c, s, body)
            assert first.status_code == 200
            before = hits(c)
        with running_client(tmp / "data", onnx_embedder, clock) as c:
            after = hits(c)
            # the recall log and applied feedback survived too: a repeat is still a no-op
            assert post(c, s, body).json() == first.json()
    assert after == before
    parts = {h[0]: h[2] for h in before}
    assert parts[ids[0]]["value"] > 0.5 > parts[ids[1]]["value"]
    assert parts[ids[0]]["ff"] != 0.5
