"""A query that compares events is looked for event by event (ww.engine.comparisons): each
hit's ``semantic`` part is its best cosine to the whole query or to one named event, while
any other query is scored against itself alone."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
from fastapi.testclient import TestClient

from tests.api.helpers import new_session_id, running_client, scratch_dir
from tests.conftest import ManualClock
from ww.embedding import OnnxEmbedder
from ww.engine.comparisons import comparison_parts

RECALL = "/api/v1/episodes/recall"
MEMORIES = [
    "We talked about the garden for a while, then I mentioned that I finally bought a coffee "
    "maker last Tuesday, a black and stainless steel machine.",
    "Spent the afternoon answering emails and planning the dinner party menu; my stand mixer "
    "broke halfway through kneading the dough.",
    "Which dessert recipes work without special kitchen equipment?",
    "I am looking for a good recipe for a chocolate cake for the weekend.",
    "What is the best way to clean a kitchen counter made of granite?",
]
COMPARING = (
    "Which happened first, the purchase of the coffee maker or the malfunction of the stand mixer?"
)
PLAIN = "What kitchen appliances did I buy for the dinner party?"


@pytest.fixture(scope="module", params=["qdrant_edge", "qdrant_local"])
def client(request: pytest.FixtureRequest, onnx_embedder: OnnxEmbedder) -> Iterator[TestClient]:
    with (
        scratch_dir() as tmp,
        running_client(tmp / "data", onnx_embedder, ManualClock(), vectors=request.param) as c,
    ):
        c.headers["X-Session-ID"] = new_session_id("compare")
        r = c.post("/api/v1/episodes/batch", json={"episodes": [{"content": m} for m in MEMORIES]})
        assert r.status_code == 201, r.text
        yield c


def _semantic(client: TestClient, query: str) -> dict[str, float]:
    r = client.post(RECALL, json={"query": query, "limit": len(MEMORIES), "learn": False})
    assert r.status_code == 200, r.text
    return {h["episode"]["content"]: h["score_parts"]["semantic"] for h in r.json()["hits"]}


def _cosines(embedder: OnnxEmbedder, texts: list[str]) -> np.ndarray:
    # Rows: the texts; columns: the memories.
    return embedder.embed(texts) @ embedder.embed(MEMORIES).T


def test_a_comparing_query_scores_each_memory_by_its_closest_event(
    client: TestClient, onnx_embedder: OnnxEmbedder
) -> None:
    parts = comparison_parts(COMPARING)
    assert parts == ("the purchase of the coffee maker", "the malfunction of the stand mixer")
    cos = _cosines(onnx_embedder, [COMPARING, *parts])
    got = _semantic(client, COMPARING)
    assert set(got) == set(MEMORIES)
    for j, memory in enumerate(MEMORIES):
        assert got[memory] == pytest.approx(max(0.0, float(cos[:, j].max())), abs=2e-3)
    # The events' own vectors matter: for a memory that mentions an event in passing, one
    # event is closer than the whole question.
    assert any(cos[1:, j].max() > cos[0, j] + 0.05 for j in range(2))


def test_any_other_query_is_scored_against_itself_only(
    client: TestClient, onnx_embedder: OnnxEmbedder
) -> None:
    assert comparison_parts(PLAIN) == ()
    cos = _cosines(onnx_embedder, [PLAIN])
    got = _semantic(client, PLAIN)
    for j, memory in enumerate(MEMORIES):
        assert got[memory] == pytest.approx(max(0.0, float(cos[0, j])), abs=2e-3)
