"""Long memories are searchable by meaning to their last word (issue 17), end to end through
HTTP on the embedded tier and the Qdrant server backend: a fact at the end of a
30,000-character memory is recalled by a question that shares no word with the memory, its
``semantic`` part far above what the memory's main vector alone gives; an edit that drops
the fact drops the match, a delete removes it, the reconciler and an import index the
memory with all its parts."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from bench.long_content import long_memory, shared_words
from tests.api.helpers import new_session_id, running_client, scratch_dir
from tests.conftest import ManualClock
from tests.factories import T0
from ww.embedding import OnnxEmbedder
from ww.storage.factory import build_vector_index
from ww.storage.guarded import unwrap

BASE = "/api/v1/episodes"
NDJSON = {"Content-Type": "application/x-ndjson"}
CONTENT, QUESTION = long_memory(0, 30_000)
# The same memory without its last sentence: nothing in it is about the question.
WITHOUT_FACT = CONTENT[: CONTENT.rindex(". ") + 1]
DISTRACTORS = [
    "Rebased the payments branch and fixed two failing integration tests.",
    "The nightly backup finished in 14 minutes after the storage upgrade.",
    "Carol asked for the quarterly latency report by Thursday.",
    "Deployed version 4.2 of the search service to the canary pool.",
    "Rotated the TLS certificates on the internal gateway.",
    "Bob prefers tabs over spaces and says so in every review.",
]

_CLOCK = ManualClock()


@pytest.fixture(scope="module", params=["qdrant_edge", "qdrant_local"])
def shared_client(
    request: pytest.FixtureRequest, onnx_embedder: OnnxEmbedder
) -> Iterator[TestClient]:
    with (
        scratch_dir() as tmp,
        running_client(tmp / "data", onnx_embedder, _CLOCK, vectors=request.param) as c,
    ):
        yield c


@pytest.fixture
def client(shared_client: TestClient) -> Iterator[TestClient]:
    _CLOCK.now = T0
    shared_client.headers["X-Session-ID"] = new_session_id("long")
    yield shared_client


def _create(client: TestClient, content: str) -> str:
    r = client.post(BASE, json={"content": content})
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


def _seed(client: TestClient) -> str:
    for text in DISTRACTORS:
        _create(client, text)
    return _create(client, CONTENT)


def _recall(client: TestClient, query: str = QUESTION) -> list[dict[str, Any]]:
    r = client.post(f"{BASE}/recall", json={"query": query, "learn": False})
    assert r.status_code == 200, r.text
    return list(r.json()["hits"])


def _main_vector_cosine(embedder: OnnxEmbedder, content: str) -> float:
    """What the memory's own vector, which sees only its beginning, scores for the question."""
    query, memory = embedder.embed([QUESTION, content])
    return float(np.dot(query, memory))


def _assert_found_by_meaning(hits: list[dict[str, Any]], memory_id: str, main: float) -> None:
    assert hits and hits[0]["id"] == memory_id, [h["memory"]["content"][-90:] for h in hits]
    parts = hits[0]["score_parts"]
    assert parts["keyword"] == 0.0  # no word of the question is in the memory
    # Far above the main vector (about 0 for this question); the fact on its own scores
    # about 0.45, a window of notes ending in it about 0.27 with the vendored model.
    assert parts["semantic"] > main + 0.2


def test_the_question_shares_no_word_with_the_memory() -> None:
    assert len(CONTENT) == 30_000
    assert not shared_words(CONTENT, QUESTION)
    assert CONTENT.endswith("up in the attic.")


def test_a_fact_at_the_end_of_a_long_memory_is_recalled_by_meaning(
    client: TestClient, onnx_embedder: OnnxEmbedder
) -> None:
    memory_id = _seed(client)
    main = _main_vector_cosine(onnx_embedder, CONTENT)
    assert main < 0.15  # the beginning the main vector sees is about something else
    _assert_found_by_meaning(_recall(client), memory_id, main)


def test_an_edit_without_the_fact_no_longer_matches_and_delete_removes_it(
    client: TestClient, onnx_embedder: OnnxEmbedder
) -> None:
    memory_id = _seed(client)
    before = _recall(client)[0]["score_parts"]["semantic"]
    r = client.patch(f"{BASE}/{memory_id}", json={"content": WITHOUT_FACT})
    assert r.status_code == 200, r.text
    after = {h["id"]: h["score_parts"]["semantic"] for h in _recall(client)}
    # The stale parts went with the edit: what is left scores like any other note.
    assert after.get(memory_id, 0.0) < before - 0.1
    # The fact back, at a memory of a few windows: found again, then deleted.
    r = client.patch(f"{BASE}/{memory_id}", json={"content": CONTENT[-3000:]})
    assert r.status_code == 200, r.text
    assert _recall(client)[0]["id"] == memory_id
    assert client.delete(f"{BASE}/{memory_id}").status_code == 204
    assert memory_id not in {h["id"] for h in _recall(client)}


def test_a_long_memorys_windows_stay_out_of_the_embedding_cache(client: TestClient) -> None:
    embedder = client.app.state.engine.embedder  # type: ignore[attr-defined]
    before = embedder.stats
    _create(client, long_memory(7, 20_000)[0])  # a memory no other test writes
    after = embedder.stats
    assert after.items_embedded - before.items_embedded > 50  # its windows were embedded
    assert after.cache_entries - before.cache_entries <= 1  # only its own text was cached


def test_the_reconciler_indexes_a_pending_long_memory_with_its_parts(
    onnx_embedder: OnnxEmbedder,
) -> None:
    _CLOCK.now = T0
    with scratch_dir() as tmp, running_client(tmp / "data", onnx_embedder, _CLOCK) as client:
        client.headers["X-Session-ID"] = new_session_id("long-pending")
        for text in DISTRACTORS:
            _create(client, text)
        engine = client.app.state.engine  # type: ignore[attr-defined]
        portal: Any = getattr(client, "portal")  # noqa: B009 -- set while the client runs
        portal.call(unwrap(engine.vectors).close)
        memory_id = _create(client, CONTENT)  # acknowledged, its vectors pending
        fresh = build_vector_index(client.app.state.settings)  # type: ignore[attr-defined]
        portal.call(fresh.open)
        engine.vectors = engine.circuits.guard("vectors", fresh)
        assert portal.call(engine.reconcile).indexed == 1
        main = _main_vector_cosine(onnx_embedder, CONTENT)
        _assert_found_by_meaning(_recall(client), memory_id, main)


@pytest.mark.parametrize("reembed", ["auto", "always"])
def test_an_imported_long_memory_is_found_by_meaning(
    onnx_embedder: OnnxEmbedder, reembed: str
) -> None:
    # The export carries main vectors only: the import embeds the parts from the text.
    _CLOCK.now = T0
    with scratch_dir() as tmp:
        with running_client(tmp / "src", onnx_embedder, _CLOCK) as src:
            src.headers["X-Session-ID"] = session = new_session_id("long-export")
            memory_id = _seed(src)
            body = src.get("/api/v1/admin/export", params={"session_id": session})
            assert body.status_code == 200, body.text
        with running_client(tmp / "dst", onnx_embedder, _CLOCK) as dst:
            r = dst.post(
                "/api/v1/admin/import",
                content=body.content,
                headers=NDJSON,
                params={"reembed": reembed},
            )
            assert r.status_code == 200, r.text
            dst.headers["X-Session-ID"] = session
            main = _main_vector_cosine(onnx_embedder, CONTENT)
            _assert_found_by_meaning(_recall(dst), memory_id, main)
