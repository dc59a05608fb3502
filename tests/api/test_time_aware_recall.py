"""Recall reads the query's time words at ``at``: the memory from "last week" rises, and
"current" prefers the newest of similar memories; every hit carries a calibrated relevance
that ``min_relevance`` filters on."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.api.helpers import new_session_id, running_client, scratch_dir
from tests.conftest import ManualClock
from ww.embedding import OnnxEmbedder

AT = datetime(2024, 3, 20, 18, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def shared_client(onnx_embedder: OnnxEmbedder) -> Iterator[TestClient]:
    # The clock is far from AT: every judgement of time must come from the request's ``at``.
    clock = ManualClock(datetime(2030, 1, 1, tzinfo=UTC))
    with scratch_dir() as tmp, running_client(tmp / "data", onnx_embedder, clock) as c:
        yield c


@pytest.fixture
def client(shared_client: TestClient) -> Iterator[TestClient]:
    shared_client.headers["X-Session-ID"] = new_session_id("time")
    yield shared_client


def _add(client: TestClient, items: list[tuple[str, str, datetime]]) -> None:
    episodes = [
        {"content": text, "external_id": ext, "timestamp": ts.isoformat()}
        for ext, text, ts in items
    ]
    r = client.post("/api/v1/episodes/batch", json={"episodes": episodes})
    assert r.status_code == 201, r.text


def _recall(client: TestClient, query: str, at: datetime) -> list[dict[str, Any]]:
    body = {"query": query, "learn": False, "at": at.isoformat()}
    r = client.post("/api/v1/episodes/recall", json=body)
    assert r.status_code == 200, r.text
    hits: list[dict[str, Any]] = r.json()["hits"]
    return hits


def test_last_week_lifts_the_memory_from_last_week(client: TestClient) -> None:
    _add(
        client,
        [
            # The same words each time: only time can tell them apart.
            ("week", "I went hiking in the hills with my cousin.", AT - timedelta(days=7)),
            ("today", "I went hiking in the hills with my cousin.", AT - timedelta(hours=3)),
            ("old", "I went hiking in the hills with my cousin.", AT - timedelta(days=90)),
        ],
    )
    plain = _recall(client, "Where did I go hiking with my cousin?", AT)
    assert all(h["score_parts"]["time"] == 0 for h in plain)
    assert plain[0]["external_id"] == "today"
    timed = _recall(client, "Where did I go hiking with my cousin last week?", AT)
    assert timed[0]["external_id"] == "week"
    parts = {h["external_id"]: h["score_parts"]["time"] for h in timed}
    assert parts["week"] == 1.0
    assert parts["old"] < parts["today"] < 1.0
    # Asked a month later, "last week" names another week: the lift is gone.
    later = _recall(client, "Where did I go hiking with my cousin last week?", AT + timedelta(30))
    assert {h["external_id"]: h["score_parts"]["time"] for h in later}["week"] < 1.0


def test_current_prefers_the_newest_of_similar_memories(client: TestClient) -> None:
    _add(
        client,
        [
            ("new", "I work as a nurse at the city hospital.", AT - timedelta(days=30)),
            ("old", "I work as a nurse at the city hospital.", AT - timedelta(days=700)),
        ],
    )
    hits = _recall(client, "What is my current job?", AT)
    assert hits[0]["external_id"] == "new"
    newest = {h["external_id"]: h["score_parts"]["newest"] for h in hits}
    assert newest == {"new": 1.0, "old": 0.0}
    plain = _recall(client, "What is my job?", AT)
    assert all(h["score_parts"]["newest"] == 0 for h in plain)


def test_at_must_be_a_datetime(client: TestClient) -> None:
    r = client.post("/api/v1/episodes/recall", json={"query": "hiking", "at": "last tuesday"})
    assert r.status_code == 422
    assert r.json()["error"]["code"]


def test_relevance_tells_a_match_from_nothing_and_min_relevance_drops(client: TestClient) -> None:
    _add(
        client,
        [
            ("job", "I work as a nurse at the city hospital.", AT - timedelta(days=3)),
            ("rain", "It rained all weekend so we stayed inside.", AT - timedelta(days=2)),
        ],
    )
    match = _recall(client, "Where do I work as a nurse?", AT)
    assert match[0]["external_id"] == "job"
    nothing = _recall(client, "What is the name of my pet tortoise?", AT)
    assert match[0]["relevance"] > 0.5 > nothing[0]["relevance"]
    # Unlike the score, which is high for the best of whatever there is.
    assert nothing[0]["score"] > 0.2
    body = {"query": "What is the name of my pet tortoise?", "learn": False, "min_relevance": 0.5}
    r = client.post("/api/v1/episodes/recall", json=body)
    assert r.status_code == 200, r.text
    assert r.json()["hits"] == []
    body["min_relevance"] = 1.5
    assert client.post("/api/v1/episodes/recall", json=body).status_code == 422


def test_a_past_at_ranks_then_but_records_the_review_now(client: TestClient) -> None:
    _add(client, [("fig", "I repotted the fig tree on the balcony.", AT - timedelta(days=2))])
    body = {"query": "when did I repot the fig tree?", "learn": True, "at": AT.isoformat()}
    hits = client.post("/api/v1/episodes/recall", json=body).json()["hits"]
    stored = client.get(f"/api/v1/episodes/{hits[0]['id']}").json()
    # The module's clock stands at 2030: the review is recorded then, not at the past ``at``.
    assert stored["last_accessed"].startswith("2030-01-01")
    assert stored["access_count"] == 1


@pytest.mark.parametrize(
    "query", ["what happened in 9999", "what did I do in December 9999", "on 9999-12-31"]
)
@pytest.mark.parametrize("url", ["/api/v1/episodes/recall", "/api/v1/recall"])
def test_a_date_at_the_calendars_end_is_no_error(client: TestClient, query: str, url: str) -> None:
    _add(client, [("shed", "I repainted the garden shed green.", AT)])
    r = client.post(url, json={"query": query, "learn": False, "at": AT.isoformat()})
    assert r.status_code == 200, r.text
    assert r.json()["hits"]


def test_this_year_asked_at_the_last_instant_is_no_error(client: TestClient) -> None:
    _add(client, [("shed", "I repainted the garden shed green.", AT)])
    body = {"query": "what did I paint this year?", "learn": False, "at": "9999-12-31T23:59:59Z"}
    r = client.post("/api/v1/episodes/recall", json=body)
    assert r.status_code == 200, r.text


def test_yesterday_is_the_askers_local_day(client: TestClient) -> None:
    # 01:00 on 10 May in Tokyo: yesterday is 9 May there, 8 May 15:00Z to 9 May 15:00Z.
    at = datetime(2024, 5, 10, 1, 0, tzinfo=timezone(timedelta(hours=9)))
    _add(
        client,
        [
            ("local", "I bought a blue kettle.", datetime(2024, 5, 8, 20, 0, tzinfo=UTC)),
            ("utc", "I bought a blue kettle.", datetime(2024, 5, 9, 16, 0, tzinfo=UTC)),
        ],
    )
    parts = {
        h["external_id"]: h["score_parts"]["time"]
        for h in _recall(client, "What kettle did I buy yesterday?", at)
    }
    # In UTC days the second would be yesterday (9 May) and the first not.
    assert parts["local"] == 1.0
    assert parts["utc"] < 1.0
