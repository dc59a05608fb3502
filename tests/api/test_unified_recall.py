"""``POST /api/v1/recall``: one query over episodes, entities and skills, end to end.

One app serves the module; every test acts in a session of its own (see ``helpers``).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.api.helpers import assert_envelope, new_session_id, running_client, scratch_dir
from tests.conftest import ManualClock
from tests.factories import T0
from ww.embedding import OnnxEmbedder
from ww.engine.recall import PRESETS, Preset
from ww.engine.unified import weight_total

URL = "/api/v1/recall"
_CLOCK = ManualClock()


@pytest.fixture(scope="module")
def shared_client(onnx_embedder: OnnxEmbedder) -> Iterator[TestClient]:
    with scratch_dir() as tmp, running_client(tmp / "data", onnx_embedder, _CLOCK) as c:
        yield c


@pytest.fixture
def clock() -> ManualClock:
    _CLOCK.now = T0
    return _CLOCK


@pytest.fixture
def client(shared_client: TestClient, clock: ManualClock) -> Iterator[TestClient]:
    shared_client.headers["X-Session-ID"] = new_session_id("uni")
    yield shared_client
    del shared_client.headers["X-Session-ID"]


def seed(client: TestClient) -> dict[str, list[str]]:
    """Six episodes, four entities and four skills, all about databases and deployment."""
    texts = [f"Postgres database backup number {i} ran at night" for i in range(6)]
    r = client.post(
        "/api/v1/episodes/batch",
        json={"episodes": [{"content": t} for t in texts]},
    )
    assert r.status_code == 201, r.text
    ids: dict[str, list[str]] = {"episode": [e["id"] for e in r.json()["episodes"]]}
    ids["entity"] = []
    for name in ("Postgres", "Redis", "Backup policy", "Kubernetes"):
        r = client.post(
            "/api/v1/entities", json={"name": name, "summary": f"{name} database backup"}
        )
        assert r.status_code == 201, r.text
        ids["entity"].append(r.json()["id"])
    ids["skill"] = []
    for name in ("backup", "restore", "vacuum", "deploy"):
        body = {
            "name": name,
            "task": f"{name} the postgres database",
            "steps": [{"order": 1, "action": name}],
        }
        r = client.post("/api/v1/skills", json=body)
        assert r.status_code == 201, r.text
        ids["skill"].append(r.json()["id"])
    return ids


def recall(client: TestClient, **body: Any) -> dict[str, Any]:
    body.setdefault("query", "postgres database backup")
    r = client.post(URL, json=body)
    assert r.status_code == 200, r.text
    return dict(r.json())


def test_every_type_is_recalled_and_tagged(client: TestClient) -> None:
    ids = seed(client)
    out = recall(client, learn=False)
    assert out["recall_id"]
    by_type = {t: [h for h in out["hits"] if h["memory_type"] == t] for t in ids}
    # Default limits: episode 10 (only 6 exist), entity 5 (4 exist), skill 3.
    assert (len(by_type["episode"]), len(by_type["entity"]), len(by_type["skill"])) == (6, 4, 3)
    assert out["counts"] == {"episode": 6, "entity": 4, "skill": 3}
    for kind, hits in by_type.items():
        for h in hits:
            assert h["id"] in ids[kind]
            assert h["memory"]["id"] == h["id"]
            assert h["score_parts"]["semantic"] > 0
            assert 0.0 <= h["score"] <= 1.0
    assert set(by_type["episode"][0]["score_parts"]) >= {"neighbour", "speaker"}
    assert set(by_type["entity"][0]["score_parts"]) >= {"base_level", "spread"}
    assert set(by_type["skill"][0]["score_parts"]) >= {"success_rate"}


def test_per_type_limits_and_memory_types(client: TestClient) -> None:
    seed(client)
    out = recall(client, limits={"episode": 2, "entity": 1, "skill": 0}, learn=False)
    assert out["counts"] == {"episode": 2, "entity": 1, "skill": 0}
    out = recall(client, memory_types=["skill"], limits={"skill": 4}, learn=False)
    assert out["counts"] == {"episode": 0, "entity": 0, "skill": 4}
    assert {h["memory_type"] for h in out["hits"]} == {"skill"}


def test_fused_order_is_by_comparable_score(client: TestClient) -> None:
    seed(client)
    hits = recall(client, learn=False)["hits"]
    scores = [h["score"] for h in hits]
    assert scores == sorted(scores, reverse=True)
    assert len({h["memory_type"] for h in hits}) == 3
    # The unified score is the type's own score over its weights' total: episodes under
    # the balanced preset weigh more than 1 in all, entities and skills 1.
    totals = {"episode": weight_total(PRESETS[Preset.BALANCED]), "entity": 1.0, "skill": 1.0}
    assert totals["episode"] > 1.0
    for h in hits:
        assert h["score"] == pytest.approx(min(1.0, h["type_score"] / totals[h["memory_type"]]))


def test_same_ranking_as_each_types_own_recall(client: TestClient) -> None:
    seed(client)
    q = "postgres database backup"
    hits = recall(client, query=q, learn=False)["hits"]
    own_ep = client.post("/api/v1/episodes/recall", json={"query": q, "learn": False}).json()
    own_en = client.post(
        "/api/v1/entities/recall", json={"query": q, "limit": 5, "learn": False}
    ).json()
    assert [h["id"] for h in hits if h["memory_type"] == "episode"] == [
        h["id"] for h in own_ep["hits"]
    ]
    assert [h["id"] for h in hits if h["memory_type"] == "entity"] == [
        h["id"] for h in own_en["hits"]
    ]


def _state(client: TestClient, ids: dict[str, list[str]]) -> list[Any]:
    out = []
    for kind, path in (("episode", "episodes"), ("entity", "entities"), ("skill", "skills")):
        for i in ids[kind]:
            body = client.get(f"/api/v1/{path}/{i}").json()
            out.append((i, body.get("fsrs"), body["access_count"], body.get("last_accessed")))
    return out


def test_learn_false_is_read_only_and_learn_true_reviews(
    client: TestClient, clock: ManualClock
) -> None:
    ids = seed(client)
    before = _state(client, ids)
    clock.advance(hours=5)
    recall(client, learn=False)
    assert _state(client, ids) == before
    out = recall(client)
    returned = {h["id"] for h in out["hits"]}
    after = {row[0]: row for row in _state(client, ids)}
    for row in before:
        changed = after[row[0]][2] == row[2] + 1
        assert changed == (row[0] in returned), row[0]


def test_sessions_are_isolated(shared_client: TestClient, clock: ManualClock) -> None:
    a, b = new_session_id("uni-a"), new_session_id("uni-b")
    shared_client.headers["X-Session-ID"] = a
    try:
        ids = seed(shared_client)
        shared_client.headers["X-Session-ID"] = b
        out = recall(shared_client, learn=False)
        assert out["hits"] == []
        assert out["counts"] == {"episode": 0, "entity": 0, "skill": 0}
        shared_client.headers["X-Session-ID"] = a
        mine = {h["id"] for h in recall(shared_client, learn=False)["hits"]}
        assert mine <= {i for v in ids.values() for i in v}
    finally:
        del shared_client.headers["X-Session-ID"]


def test_filters_apply_to_their_type(client: TestClient) -> None:
    ids = seed(client)
    r = client.post(
        "/api/v1/episodes",
        json={"content": "postgres database backup in the billing project"},
    )
    assert r.status_code == 201
    out = recall(client, filters={"time_to": "2000-01-01T00:00:00Z"}, learn=False)
    # The time range excludes every episode; entities and skills are not time-filtered.
    assert out["counts"]["episode"] == 0
    assert out["counts"]["entity"] == 4
    out = recall(client, entity_type="PERSON", domain="nope", learn=False)
    assert out["counts"] == {"episode": 7, "entity": 0, "skill": 0}
    assert len(ids["episode"]) == 6


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"query": ""},
        {"query": "x", "limits": {"episode": 101}},
        {"query": "x", "limits": {"episode": -1}},
        {"query": "x", "limits": {"memo": 1}},
        {"query": "x", "memory_types": []},
        {"query": "x", "memory_types": ["fact"]},
        {"query": "x", "filters": {"nope": 1}},
        {"query": "x", "entity_type": "THING"},
        {"query": "x", "surprise": True},
        {"query": "x", "min_relevance": 1.5},
        {"query": "x", "min_relevance": -0.1},
    ],
)
def test_bad_input_is_422(client: TestClient, body: dict[str, Any]) -> None:
    assert_envelope(client.post(URL, json=body), 422)


def test_query_is_embedded_once_for_all_types(client: TestClient) -> None:
    seed(client)
    service = client.app.state.engine.embedder  # type: ignore[attr-defined]
    before = service.stats
    out = recall(client, query="which nightly job protects the postgres data", learn=False)
    after = service.stats
    assert {h["memory_type"] for h in out["hits"]} == {"episode", "entity", "skill"}
    lookups = after.cache_hits + after.cache_misses - before.cache_hits - before.cache_misses
    assert lookups == 1


def test_at_reaches_the_episodes_time_cues(client: TestClient) -> None:
    asked = datetime(2024, 3, 20, 18, 0, tzinfo=UTC)
    episodes = [
        {"content": "I repainted the garden shed green", "timestamp": (asked - d).isoformat()}
        for d in (timedelta(days=7), timedelta(days=90))
    ]
    r = client.post("/api/v1/episodes/batch", json={"episodes": episodes})
    assert r.status_code == 201, r.text
    body = {"query": "what did I repaint last week?", "learn": False, "at": asked.isoformat()}
    hits = [h for h in client.post(URL, json=body).json()["hits"] if h["memory_type"] == "episode"]
    assert sorted(h["score_parts"]["time"] for h in hits)[-1] == 1.0
    assert hits[0]["memory"]["timestamp"].startswith("2024-03-13")


def test_every_hit_carries_relevance_and_min_relevance_drops_the_rest(client: TestClient) -> None:
    seed(client)
    hits = recall(client, learn=False)["hits"]
    assert {h["memory_type"] for h in hits} == {"episode", "entity", "skill"}
    for h in hits:
        assert 0.0 <= h["relevance"] <= 1.0
    # The episode's relevance is the one its own recall gives.
    own = client.post(
        "/api/v1/episodes/recall", json={"query": "postgres database backup", "learn": False}
    ).json()["hits"]
    by_id = {h["id"]: h["relevance"] for h in own}
    for h in hits:
        if h["memory_type"] == "episode":
            assert h["relevance"] == pytest.approx(by_id[h["id"]])
    floor = sorted(h["relevance"] for h in hits)[len(hits) // 2]
    kept = recall(client, learn=False, min_relevance=floor)
    assert kept["hits"]
    assert all(h["relevance"] >= floor for h in kept["hits"])
    assert {h["id"] for h in kept["hits"]} == {h["id"] for h in hits if h["relevance"] >= floor}
    assert sum(kept["counts"].values()) == len(kept["hits"])
    nothing = recall(client, query="what is my pet tortoise called", learn=False, min_relevance=0.5)
    assert nothing["hits"] == []
