"""Explicit feedback moves a memory in the ranking (``POST /api/v1/feedback``, real app).

A memory rewarded for a question rises for that question and for a differently worded one
on the same topic; a memory rated down falls. The value is a property of the memory, so a
related query sees it too; the same question also gets the rating itself back (the
query-tied value, tests/engine/test_learning_engine.py). How far feedback can move a memory
is bounded (``ww.engine.recall.feedback_margin``; the property is in
tests/unit/test_fusion.py).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.api.helpers import new_session_id, running_client, scratch_dir
from tests.conftest import ManualClock
from tests.factories import T0
from ww.embedding import OnnxEmbedder

# One topic (a runner's training), a few memories beside it. Distinct times make the
# temporal neighbours, and so the ranking, the same on every run.
TEXTS = [
    "Ana is training for the Lisbon marathon in October",
    "Ana runs thirty kilometres every Sunday morning along the river",
    "Ana bought new running shoes after her knee started hurting",
    "Ana's coach wants her to add interval sessions on Wednesdays",
    "Ben prefers cycling to running and rides to work every day",
    "The team lunch moved to Thursday because of the holiday",
    "Ana finished the half marathon in Porto last spring",
    "We need to renew the office internet contract before June",
]
QUERY = "what does Ana's running training look like?"
RELATED = "how does Ana prepare for her races?"
ROUNDS = 3


@pytest.fixture(scope="module")
def client(onnx_embedder: OnnxEmbedder) -> Iterator[TestClient]:
    with scratch_dir() as tmp, running_client(tmp / "data", onnx_embedder, ManualClock()) as c:
        yield c


def _session(client: TestClient) -> dict[str, str]:
    h = {"X-Session-ID": new_session_id("fbr")}
    episodes = [
        {"content": t, "timestamp": (T0 - timedelta(hours=len(TEXTS) - k)).isoformat()}
        for k, t in enumerate(TEXTS)
    ]
    r = client.post("/api/v1/episodes/batch", headers=h, json={"episodes": episodes})
    assert r.status_code == 201, r.text
    return h


def _recall(client: TestClient, h: dict[str, str], query: str, learn: bool) -> dict[str, Any]:
    body = {"query": query, "limit": len(TEXTS), "learn": learn}
    r = client.post("/api/v1/episodes/recall", headers=h, json=body)
    assert r.status_code == 200, r.text
    result: dict[str, Any] = r.json()
    return result


def _ranks(client: TestClient, h: dict[str, str], query: str) -> dict[str, int]:
    """Rank (1 = best) of every memory, read-only: looking changes nothing."""
    hits = _recall(client, h, query, learn=False)["hits"]
    return {hit["id"]: k for k, hit in enumerate(hits, start=1)}


def _rate(
    client: TestClient, h: dict[str, str], memory: str, reward: float, rounds: int = ROUNDS
) -> list[float]:
    """``rounds`` times: ask with ``learn``, rate ``memory``; the values it went through."""
    values = []
    for _ in range(rounds):
        res = _recall(client, h, QUERY, learn=True)
        body = {"recall_id": res["recall_id"], "rewards": {memory: reward}}
        r = client.post("/api/v1/feedback", headers=h, json=body)
        assert r.status_code == 200, r.text
        values.append(r.json()["changes"][0]["value_after"])
    return values


def test_a_rewarded_memory_rises_for_the_same_and_a_related_query(client: TestClient) -> None:
    h = _session(client)
    before, related_before = _ranks(client, h, QUERY), _ranks(client, h, RELATED)
    assert _ranks(client, h, QUERY) == before  # read-only recall is stable
    third = next(m for m, k in before.items() if k == 3)
    assert related_before[third] > 1
    values = _rate(client, h, third, 1.0)
    assert values == sorted(values) and values[-1] > 0.8
    after, related_after = _ranks(client, h, QUERY), _ranks(client, h, RELATED)
    assert after[third] < before[third]
    assert related_after[third] < related_before[third]


def test_a_memory_rated_down_falls(client: TestClient) -> None:
    h = _session(client)
    hits = _recall(client, h, QUERY, learn=False)["hits"]
    related_before = _recall(client, h, RELATED, learn=False)["hits"]
    # A fall below unrated counts once (see VALUE_GAIN): six ratings take the value near 0,
    # about 0.045 off the score, enough to pass a close neighbour and no more. Which memory
    # has one depends on the backend's float rounding, so the test picks the closest pair
    # rather than a rank.
    gaps = [(a["score"] - b["score"], k) for k, (a, b) in enumerate(itertools.pairwise(hits))]
    gap, k = min((g, k) for g, k in gaps if g > 0)
    assert gap < 0.03, f"no memory within 0.03 of the next one: {gaps}"
    rated = hits[k]["id"]
    values = _rate(client, h, rated, 0.0, rounds=6)
    assert values == sorted(values, reverse=True) and values[-1] < 0.1
    assert _ranks(client, h, QUERY)[rated] > k + 1
    related_after = _recall(client, h, RELATED, learn=False)["hits"]
    was = next(k for k, hit in enumerate(related_before) if hit["id"] == rated)
    now = next(k for k, hit in enumerate(related_after) if hit["id"] == rated)
    assert related_after[now]["score"] < related_before[was]["score"] and now >= was
