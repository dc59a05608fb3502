"""What /metrics tells of the engine's work: the stages of each recall, the embedding
service's batches and queue, memories per type and the pending-vector backlog, after real
requests on a real app (the backlog produced for real by closing the vector index)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.api.helpers import running_client, sample_value, scrape_metrics, scratch_dir
from tests.conftest import ManualClock
from ww.embedding import OnnxEmbedder
from ww.storage.factory import build_vector_index
from ww.storage.guarded import unwrap

STAGES = (
    "embed",
    "keyword_search",
    "vector_search",
    "candidates",
    "fusion",
    "neighbours",
    "rank",
    "fetch",
    "learn",
)
STAGE_COUNT = "ww_recall_stage_duration_seconds_count"
CONTENT = "the lighthouse keeper logs every passing ship at dawn"


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def client(onnx_embedder: OnnxEmbedder, clock: ManualClock) -> Iterator[TestClient]:
    # Its own data directory: the memory counts start from an empty store.
    with scratch_dir("ww-metrics-") as tmp, running_client(tmp / "data", onnx_embedder, clock) as c:
        c.headers["X-Session-ID"] = "metrics-engine-1"
        yield c


def _app(client: TestClient) -> Any:
    return client.app


def _moved(before: dict[Any, float], after: dict[Any, float], name: str, **labels: str) -> float:
    return sample_value(after, name, **labels) - sample_value(before, name, **labels)


def test_a_recall_times_the_stages_it_ran(client: TestClient) -> None:
    assert client.post("/api/v1/episodes", json={"content": CONTENT}).status_code == 201
    before = scrape_metrics(client)
    r = client.post("/api/v1/episodes/recall", json={"query": "who logs the ships?"})
    assert r.status_code == 200 and r.json()["hits"]
    after = scrape_metrics(client)
    assert {s: _moved(before, after, STAGE_COUNT, stage=s) for s in STAGES} == dict.fromkeys(
        STAGES, 1.0
    )
    assert _moved(before, after, "ww_recall_stage_duration_seconds_sum", stage="embed") > 0

    # Without learning, and without the temporal neighbours, those stages do not run.
    flag = client.patch("/api/v1/control/flags/spreading_activation", json={"enabled": False})
    assert flag.status_code == 200, flag.text
    before = after
    body = {"query": "who logs the ships?", "learn": False}
    assert client.post("/api/v1/episodes/recall", json=body).status_code == 200
    after = scrape_metrics(client)
    ran = {s for s in STAGES if _moved(before, after, STAGE_COUNT, stage=s)}
    assert ran == set(STAGES) - {"learn", "neighbours"}

    # Unified recall embeds the query once, for every type: one embed stage, not two.
    before = after
    assert client.post("/api/v1/recall", json={"query": "ships at dawn"}).status_code == 200
    after = scrape_metrics(client)
    assert _moved(before, after, STAGE_COUNT, stage="embed") == 1
    assert _moved(before, after, STAGE_COUNT, stage="fusion") == 1

    # A query that compares events scores the candidates against each event: one more stage.
    before = after
    query = "Which came first, the harbour crane repair or the lighthouse keeper's new logbook?"
    body = {"query": query, "learn": False}
    assert client.post("/api/v1/episodes/recall", json=body).status_code == 200
    after = scrape_metrics(client)
    assert _moved(before, after, STAGE_COUNT, stage="parts") == 1

    # The stage label carries stage names only: no session, no query. (The registry is the
    # process's, so the labels are every stage any test's recall ran: all of them by now.)
    stages = {dict(labels)["stage"] for name, labels in after if name.startswith("ww_recall_stage")}
    assert stages == {*STAGES, "parts"}


def test_ingest_and_recall_show_in_the_embedding_histograms(client: TestClient) -> None:
    before = scrape_metrics(client)
    texts = [f"harbour log entry {n}: the tide turned early" for n in range(3)]
    batch = {"episodes": [{"content": t} for t in texts]}
    assert client.post("/api/v1/episodes/batch", json=batch).status_code == 201
    after = scrape_metrics(client)
    # Three new texts went to the model, in one run; nothing queued for them.
    assert _moved(before, after, "ww_embedding_batch_size_count") == 1
    assert _moved(before, after, "ww_embedding_batch_size_sum") == 3
    assert _moved(before, after, "ww_embedding_queue_wait_seconds_count") == 0

    # A recall's query is queued for the batcher: one wait, one model run of one text.
    before = after
    r = client.post("/api/v1/episodes/recall", json={"query": "when did the tide turn?"})
    assert r.status_code == 200
    after = scrape_metrics(client)
    assert _moved(before, after, "ww_embedding_queue_wait_seconds_count") == 1
    assert _moved(before, after, "ww_embedding_batch_size_sum") == 1
    le_one = ("ww_embedding_batch_size_bucket", frozenset({"le": "1.0"}.items()))
    assert after[le_one] - before.get(le_one, 0.0) == 1


def _counts(client: TestClient, name: str) -> dict[str, float]:
    samples = scrape_metrics(client)
    return {t: sample_value(samples, name, type=t) for t in ("episode", "entity", "skill")}


def test_memories_per_type_and_the_pending_backlog(client: TestClient, clock: ManualClock) -> None:
    h = {"X-Session-ID": "metrics-engine-2"}
    for n in range(2):
        made = client.post("/api/v1/episodes", json={"content": f"{CONTENT} {n}"}, headers=h)
        assert made.status_code == 201
    assert client.post("/api/v1/episodes", json={"content": CONTENT}).status_code == 201
    entity = {"name": "Lighthouse", "summary": "the tower on the point"}
    assert client.post("/api/v1/entities", json=entity).status_code == 201
    skill = {"name": "log a ship", "task": "record a passing ship", "script": "1. write it"}
    assert client.post("/api/v1/skills", json=skill).status_code == 201
    # Counted across sessions.
    assert _counts(client, "ww_memories") == {"episode": 3, "entity": 1, "skill": 1}
    assert _counts(client, "ww_pending_vectors") == {"episode": 0, "entity": 0, "skill": 0}

    # The vector index goes away: a write is acknowledged and its vector waits.
    engine = _app(client).state.engine
    portal: Any = getattr(client, "portal")  # noqa: B009 -- set while the client runs
    portal.call(unwrap(engine.vectors).close)
    assert (
        client.post("/api/v1/episodes", json={"content": "a gull on the rail"}).status_code == 201
    )
    # The counts are kept for a few seconds of the engine's clock: a scrape now shows the
    # old ones; once they are due, the new.
    assert _counts(client, "ww_memories")["episode"] == 3
    clock.advance(seconds=11)
    assert _counts(client, "ww_memories")["episode"] == 4
    assert _counts(client, "ww_pending_vectors") == {"episode": 1, "entity": 0, "skill": 0}

    # The index comes back and the reconciler indexes the backlog away.
    fresh = build_vector_index(_app(client).state.settings)
    portal.call(fresh.open)
    engine.vectors = engine.circuits.guard("vectors", fresh)
    report = portal.call(engine.reconcile)
    assert report.indexed == 1, report
    clock.advance(seconds=11)
    assert _counts(client, "ww_pending_vectors") == {"episode": 0, "entity": 0, "skill": 0}
    assert _counts(client, "ww_memories") == {"episode": 4, "entity": 1, "skill": 1}


def test_a_store_that_cannot_count_leaves_the_last_counts(
    client: TestClient, clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    assert client.post("/api/v1/episodes", json={"content": CONTENT}).status_code == 201
    assert _counts(client, "ww_memories")["episode"] == 1
    engine = _app(client).state.engine
    portal: Any = getattr(client, "portal")  # noqa: B009 -- set while the client runs
    database = engine.circuits.get("database")

    def trip() -> None:
        for _ in range(database.threshold):
            database.record_failure()

    portal.call(lambda: _sync(trip))
    clock.advance(seconds=11)
    # The count is refused by the open circuit; the scrape still answers, counts as before.
    samples = scrape_metrics(client)
    assert sample_value(samples, "ww_memories", type="episode") == 1
    assert sample_value(samples, "ww_circuit_state", circuit="database", state="open") == 1
    assert "memory counts not refreshed: database: circuit open" in caplog.text
    portal.call(lambda: _sync(database.reset))
    clock.advance(seconds=11)
    assert _counts(client, "ww_memories")["episode"] == 1


async def _sync(fn: Any) -> None:
    """Run ``fn`` on the app's event loop, the only one that may touch a breaker."""
    fn()
