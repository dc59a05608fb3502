"""Feedback on entity, skill and unified recalls: one learning path for every kind.

Each recall made with ``learn`` logs its hits under its ``recall_id``; feedback on it
updates the learned value of every kind, reviews the FSRS state of every kind (episodes,
entities, skills) and is applied once per memory.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from uuid import uuid4

import pytest
from fastapi.testclient import TestClient

from tests.api.helpers import assert_envelope, new_session_id, running_client, scratch_dir
from tests.conftest import ManualClock
from ww.embedding import OnnxEmbedder


@pytest.fixture(scope="module")
def client(onnx_embedder: OnnxEmbedder) -> Iterator[TestClient]:
    with scratch_dir() as tmp, running_client(tmp / "data", onnx_embedder, ManualClock()) as c:
        yield c


@pytest.fixture
def session(client: TestClient) -> Iterator[str]:
    s = new_session_id("fbk")
    client.headers["X-Session-ID"] = s
    yield s
    del client.headers["X-Session-ID"]


def ok(r: Any, status: int = 200) -> Any:
    assert r.status_code == status, r.text
    return r.json()


def entities(client: TestClient) -> list[dict[str, Any]]:
    return [
        ok(client.post("/api/v1/entities", json=body), 201)
        for body in (
            {"name": "Billing API", "entity_type": "PROJECT", "summary": "the invoicing service"},
            {"name": "Pizza", "entity_type": "CONCEPT", "summary": "food after the retro"},
        )
    ]


def skill(client: TestClient) -> dict[str, Any]:
    body = {"name": "deploy billing", "task": "deploy the billing service", "script": "make"}
    return dict(ok(client.post("/api/v1/skills", json=body), 201))


def feedback(client: TestClient, body: dict[str, Any]) -> list[dict[str, Any]]:
    return list(ok(client.post("/api/v1/feedback", json=body))["changes"])


def test_entity_recall_feedback_changes_value_and_fsrs(client: TestClient, session: str) -> None:
    billing, _ = entities(client)
    res = ok(client.post("/api/v1/entities/recall", json={"query": "invoicing service"}))
    assert res["hits"][0]["id"] == billing["id"]
    before = ok(client.get(f"/api/v1/entities/{billing['id']}"))
    body = {"recall_id": res["recall_id"], "rewards": {billing["id"]: 0.0}}
    (change,) = feedback(client, body)
    assert change["memory_id"] == billing["id"] and change["labile"]
    assert change["value_before"] == 0.5 and change["value_after"] < 0.5
    after = ok(client.get(f"/api/v1/entities/{billing['id']}"))
    # A reward of 0 is an FSRS "again": a lapse, and stability falls.
    assert after["fsrs"]["lapses"] == before["fsrs"]["lapses"] + 1
    assert after["fsrs"]["stability"] == change["stability_after"]
    assert change["stability_after"] < change["stability_before"] == before["fsrs"]["stability"]
    # Once per memory: a repeat answers the same and changes nothing.
    assert feedback(client, {**body, "rewards": {billing["id"]: 1.0}}) == [change]
    assert ok(client.get(f"/api/v1/entities/{billing['id']}")) == after
    # The value is stored: the next recall's feedback starts from it.
    res2 = ok(client.post("/api/v1/entities/recall", json={"query": "invoicing service"}))
    (change2,) = feedback(client, {"recall_id": res2["recall_id"], "rewards": {billing["id"]: 1}})
    assert change2["value_before"] == change["value_after"]


def test_skill_recall_feedback_changes_value_and_fsrs(client: TestClient, session: str) -> None:
    s = skill(client)
    assert s["fsrs"]["reps"] == 0 and s["fsrs"]["last_review"] == s["created_at"]
    res = ok(client.post("/api/v1/skills/recall", json={"query": "deploy billing"}))
    assert [h["id"] for h in res["hits"]] == [s["id"]]
    # A recall with learn is an access and a "good" review, as for entities.
    before = ok(client.get(f"/api/v1/skills/{s['id']}"))
    assert before["fsrs"]["reps"] == 1 and before["access_count"] == s["access_count"] + 1
    assert before["version"] == s["version"]
    (change,) = feedback(client, {"recall_id": res["recall_id"], "reward": 0.0})
    assert change["memory_id"] == s["id"] and change["labile"]
    assert change["value_after"] < change["value_before"] == 0.5
    after = ok(client.get(f"/api/v1/skills/{s['id']}"))
    # A reward of 0 is an FSRS "again": a lapse, and stability falls.
    assert after["fsrs"]["lapses"] == before["fsrs"]["lapses"] + 1
    assert after["fsrs"]["stability"] == change["stability_after"]
    assert change["stability_after"] < change["stability_before"] == before["fsrs"]["stability"]
    # A review is not an edit: no new version.
    assert after["version"] == before["version"]
    assert ok(client.get(f"/api/v1/skills/{s['id']}/versions"))["previous"] == []
    # Once per memory: a repeat answers the same and changes nothing.
    assert feedback(client, {"recall_id": res["recall_id"], "reward": 1.0}) == [change]
    assert ok(client.get(f"/api/v1/skills/{s['id']}")) == after
    res2 = ok(client.post("/api/v1/skills/recall", json={"query": "deploy billing"}))
    (change2,) = feedback(client, {"recall_id": res2["recall_id"], "reward": 1.0})
    assert change2["value_before"] == change["value_after"] < change2["value_after"]
    assert change2["stability_after"] > change2["stability_before"]


def test_unified_recall_reward_reaches_every_type(client: TestClient, session: str) -> None:
    billing, _ = entities(client)
    s = skill(client)
    ep = ok(
        client.post(
            "/api/v1/episodes/batch",
            json={
                "episodes": [
                    {"content": "the billing service deploy failed on Monday"},
                    {"content": "the billing service was rolled back on Tuesday"},
                ]
            },
        ),
        201,
    )["episodes"][0]
    res = ok(client.post("/api/v1/recall", json={"query": "billing service"}))
    kinds = {h["id"]: h["memory_type"] for h in res["hits"]}
    assert {ep["id"], billing["id"], s["id"]} <= set(kinds)
    entity_before = ok(client.get(f"/api/v1/entities/{billing['id']}"))
    skill_before = ok(client.get(f"/api/v1/skills/{s['id']}"))
    changes = feedback(client, {"recall_id": res["recall_id"], "reward": 1.0})
    # Every hit, in the fused rank order, each once.
    assert [c["memory_id"] for c in changes] == [h["id"] for h in res["hits"]]
    assert all(c["labile"] and c["value_after"] > c["value_before"] for c in changes)
    by_id = {c["memory_id"]: c for c in changes}
    assert ok(client.get(f"/api/v1/episodes/{ep['id']}"))["value"] == pytest.approx(
        by_id[ep["id"]]["value_after"]
    )
    entity_after = ok(client.get(f"/api/v1/entities/{billing['id']}"))
    assert entity_after["fsrs"]["reps"] == entity_before["fsrs"]["reps"] + 1
    assert by_id[billing["id"]]["stability_after"] == entity_after["fsrs"]["stability"]
    skill_after = ok(client.get(f"/api/v1/skills/{s['id']}"))
    assert skill_after["fsrs"]["reps"] == skill_before["fsrs"]["reps"] + 1
    assert by_id[s["id"]]["stability_after"] == skill_after["fsrs"]["stability"]
    assert by_id[s["id"]]["stability_before"] == skill_before["fsrs"]["stability"]
    # Reward-modulated CO_RETRIEVED edges join episodes only (episode recall reads them).
    episodes = [h["id"] for h in res["hits"] if h["memory_type"] == "episode"]
    assert len(episodes) == 2
    assert {i: c["edges_changed"] for i, c in by_id.items()} == {
        i: (1 if i in episodes else 0) for i in by_id
    }
    assert feedback(client, {"recall_id": res["recall_id"], "reward": 0.0}) == changes


def test_stray_ids_and_read_only_recalls_are_404(client: TestClient, session: str) -> None:
    entities(client)
    res = ok(client.post("/api/v1/entities/recall", json={"query": "invoicing"}))
    stray = {"recall_id": res["recall_id"], "rewards": {str(uuid4()): 1.0}}
    assert_envelope(client.post("/api/v1/feedback", json=stray), 404, "not_found")
    for path in ("/api/v1/entities/recall", "/api/v1/skills/recall", "/api/v1/recall"):
        ro = ok(client.post(path, json={"query": "invoicing", "learn": False}))
        r = client.post("/api/v1/feedback", json={"recall_id": ro["recall_id"], "reward": 1})
        assert_envelope(r, 404, "not_found")
