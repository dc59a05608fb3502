"""The engine over the real embedded stores: write protocol, reconciler, lock, degradation."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import timedelta
from unittest.mock import create_autospec
from uuid import UUID

import pytest

from tests.conftest import ManualClock
from tests.engine.faults import index_failing_within
from tests.factories import HashEmbedder
from ww.config import Settings
from ww.control.flags import Flags
from ww.embedding import EmbeddingService, OnnxEmbedder
from ww.embedding.base import EmbeddingError
from ww.engine import EmbeddingMismatchError, MemoryEngine, build_engine, kinds
from ww.engine.recall import Preset
from ww.models import EpisodeCreate, EpisodeFilter, EpisodeUpdate, IndexState
from ww.storage import QdrantEdgeIndex, VectorItem
from ww.storage.guarded import unwrap


def service(embedder: object) -> EmbeddingService:
    return EmbeddingService(embedder, cache_size=64, batch_size=16)  # type: ignore[arg-type]


@pytest.fixture
async def engine(
    settings: Settings, onnx_embedder: OnnxEmbedder, clock: ManualClock
) -> AsyncIterator[MemoryEngine]:
    # fsrs on whatever its default: these tests check that retrievability ranks.
    eng = build_engine(
        settings, clock=clock, embedder=service(onnx_embedder), flags=Flags(fsrs=True)
    )
    await eng.open()
    yield eng
    await eng.close()


def new(content: str, **kw: object) -> EpisodeCreate:
    return EpisodeCreate(content=content, **kw)  # type: ignore[arg-type]


async def test_created_episodes_are_indexed_and_recallable(engine: MemoryEngine) -> None:
    created = await engine.create_episodes(
        "s1", [new("The deploy of the billing service failed on Friday"), new("I like tea")]
    )
    assert all(ep.index_state is IndexState.INDEXED for ep in created)
    result = await engine.recall_episodes("s1", "billing deploy failure", limit=2, learn=False)
    assert result.hits[0].id == created[0].id
    assert not result.degraded


async def test_learning_recall_reviews_hits(engine: MemoryEngine, clock: ManualClock) -> None:
    (ep,) = await engine.create_episodes("s1", [new("Postgres upgrade notes")])
    clock.advance(days=2)
    before = await engine.get_episode("s1", ep.id)
    await engine.recall_episodes("s1", "postgres", limit=1, learn=False)
    assert await engine.get_episode("s1", ep.id) == before
    await engine.recall_episodes("s1", "postgres", limit=1, learn=True)
    after = await engine.get_episode("s1", ep.id)
    assert after is not None and before is not None
    assert after.access_count == 1
    assert after.last_accessed == clock.now
    assert after.fsrs.reps == 1
    assert after.fsrs.stability > before.fsrs.stability


async def test_retrievability_decays_with_the_clock(
    engine: MemoryEngine, clock: ManualClock
) -> None:
    await engine.create_episodes("s1", [new("kubernetes ingress controller config")])
    first = await engine.recall_episodes("s1", "ingress", limit=1, learn=False)
    clock.advance(days=10)
    later = await engine.recall_episodes("s1", "ingress", limit=1, learn=False)
    assert first.hits[0].score_parts.retrievability == 1.0
    assert later.hits[0].score_parts.retrievability < 0.9
    assert later.hits[0].score < first.hits[0].score


async def test_vector_outage_keeps_writes_pending_and_recall_degraded(
    engine: MemoryEngine, settings: Settings
) -> None:
    (kept,) = await engine.create_episodes("s1", [new("quarterly report on the ZX-4471 sensor")])
    await engine.vectors.close()  # the index goes away for real
    (pending,) = await engine.create_episodes("s1", [new("ZX-4471 sensor recall notice")])
    assert pending.index_state is IndexState.PENDING
    stored = await engine.get_episode("s1", pending.id)
    assert stored is not None and stored.index_state is IndexState.PENDING

    degraded = await engine.recall_episodes("s1", "ZX-4471", limit=5, learn=False)
    assert degraded.degraded
    assert {h.id for h in degraded.hits} == {kept.id, pending.id}  # keyword path still works

    engine.vectors = QdrantEdgeIndex(settings.data_dir / "vectors", settings.embedding_dimension)
    await engine.vectors.open()
    report = await engine.reconcile()
    assert report.indexed == 1
    stored = await engine.get_episode("s1", pending.id)
    assert stored is not None and stored.index_state is IndexState.INDEXED
    healed = await engine.recall_episodes("s1", "sensor recall notice", limit=1, learn=False)
    assert not healed.degraded
    assert healed.hits[0].id == pending.id


async def test_reconcile_removes_orphan_vectors(engine: MemoryEngine) -> None:
    (ep,) = await engine.create_episodes("s1", [new("orphan to be")])
    # A crash between the two deletes of delete_episode leaves exactly this state.
    assert await engine.records.delete_episode("s1", ep.id)
    assert await engine.vectors.ids("s1") == {ep.id}
    report = await engine.reconcile()
    assert report.orphans_removed == 1
    assert await engine.vectors.ids("s1") == set()


async def test_update_content_reembeds_and_metadata_moves_filters(engine: MemoryEngine) -> None:
    from ww.models import EpisodeUpdate

    (ep,) = await engine.create_episodes("s1", [new("talked about gardening", metadata={"k": "a"})])
    await engine.update_episode("s1", ep.id, EpisodeUpdate(content="debugged a segfault in C"))
    hits = await engine.recall_episodes("s1", "segfault debugging", limit=1, learn=False)
    assert hits.hits[0].id == ep.id
    assert hits.hits[0].score_parts.semantic > 0.4
    await engine.update_episode("s1", ep.id, EpisodeUpdate(metadata={"k": "b"}))
    only_b = await engine.recall_episodes(
        "s1", "segfault", limit=5, learn=False, flt=EpisodeFilter(metadata={"k": "b"})
    )
    only_a = await engine.recall_episodes(
        "s1", "segfault", limit=5, learn=False, flt=EpisodeFilter(metadata={"k": "a"})
    )
    assert [h.id for h in only_b.hits] == [ep.id]
    assert only_a.hits == []


async def test_delete_session_removes_vectors_and_records(engine: MemoryEngine) -> None:
    await engine.create_episodes("s1", [new("one"), new("two")])
    await engine.create_episodes("s2", [new("three")])
    assert await engine.delete_session("s1") == 2
    assert await engine.vectors.count("s1") == 0
    assert await engine.vectors.count("s2") == 1
    assert await engine.delete_session("s1") is None


async def test_reopening_with_another_model_is_refused(
    settings: Settings, onnx_embedder: OnnxEmbedder, clock: ManualClock
) -> None:
    first = build_engine(settings, clock=clock, embedder=service(onnx_embedder))
    await first.open()
    await first.create_episodes("s1", [new("hello")])
    await first.close()

    other = build_engine(settings, clock=clock, embedder=service(HashEmbedder(384, "other-model")))
    with pytest.raises(EmbeddingMismatchError, match="WW_EMBEDDING_MODEL=all-MiniLM-L6-v2-int8"):
        await other.open()
    await other.close()

    wide = settings.model_copy(update={"embedding_dimension": 16})
    smaller = build_engine(wide, clock=clock, embedder=service(HashEmbedder(16, "tiny")))
    with pytest.raises(EmbeddingMismatchError, match="WW_EMBEDDING_DIMENSION=384"):
        await smaller.open()
    await smaller.close()

    again = build_engine(settings, clock=clock, embedder=service(onnx_embedder))
    await again.open()
    assert (await again.recall_episodes("s1", "hello", learn=False)).hits
    await again.close()


async def test_restart_keeps_memories_and_state(
    settings: Settings, onnx_embedder: OnnxEmbedder, clock: ManualClock
) -> None:
    eng = build_engine(settings, clock=clock, embedder=service(onnx_embedder))
    await eng.open()
    await eng.create_episodes("s1", [new(f"fact number {i} about rivers") for i in range(20)])
    await eng.recall_episodes("s1", "rivers", limit=5, learn=True)
    clock.advance(hours=3)
    before = await eng.recall_episodes("s1", "fact about rivers", limit=10, learn=False)
    await eng.close()

    eng = build_engine(settings, clock=clock, embedder=service(onnx_embedder))
    await eng.open()
    after = await eng.recall_episodes("s1", "fact about rivers", limit=10, learn=False)
    await eng.close()
    assert [(h.id, h.score, h.score_parts) for h in after.hits] == [
        (h.id, h.score, h.score_parts) for h in before.hits
    ]


async def test_maintenance_optimises_only_when_writes_are_quiet(
    settings: Settings, onnx_embedder: OnnxEmbedder, clock: ManualClock
) -> None:
    from ww.engine.maintenance import Maintenance

    engine = build_engine(settings, clock=clock, embedder=service(onnx_embedder))
    # A 1 KB indexing threshold makes Qdrant Edge index even this small segment.
    engine.vectors = QdrantEdgeIndex(
        settings.data_dir / "vectors", settings.embedding_dimension, indexing_threshold_kb=1
    )
    await engine.open()
    try:
        await engine.create_episodes("s1", [new(f"maintenance note {i}") for i in range(30)])
        upkeep = Maintenance(engine, quiet_s=60.0, indexing_threshold=10)
        assert await engine.vectors.unindexed() == 30
        await upkeep.run_once()  # writes are not quiet yet: no optimisation
        assert await engine.vectors.unindexed() == 30
        clock.advance(seconds=61)
        await upkeep.run_once()
        assert await engine.vectors.unindexed() == 0
        hits = await engine.recall_episodes("s1", "maintenance note 7", limit=1, learn=False)
        assert hits.hits[0].episode.content == "maintenance note 7"
    finally:
        await engine.close()


async def test_reconcile_restores_a_lost_vector(engine: MemoryEngine) -> None:
    (ep,) = await engine.create_episodes("s1", [new("a memory whose vector goes missing")])
    await engine.vectors.delete("s1", [ep.id])
    assert (await engine.recall_episodes("s1", "vector goes missing", learn=False)).hits[
        0
    ].score_parts.semantic == 0.0
    report = await engine.reconcile()
    assert report.indexed == 1
    assert await engine.vectors.ids("s1") == {ep.id}
    hit = (await engine.recall_episodes("s1", "vector goes missing", learn=False)).hits[0]
    assert hit.id == ep.id and hit.score_parts.semantic > 0.5


async def test_periodic_reconcile_leaves_writes_in_flight_alone(
    engine: MemoryEngine, clock: ManualClock, settings: Settings
) -> None:
    await engine.vectors.close()
    (ep,) = await engine.create_episodes("s1", [new("written while the index was away")])
    assert ep.index_state is IndexState.PENDING
    engine.vectors = QdrantEdgeIndex(settings.data_dir / "vectors", settings.embedding_dimension)
    await engine.vectors.open()
    clock.advance(seconds=30)
    assert (await engine.reconcile(full=False, grace=timedelta(seconds=60))).indexed == 0
    clock.advance(seconds=31)
    assert (await engine.reconcile(full=False, grace=timedelta(seconds=60))).indexed == 1


LONG = " ".join(f"river {i} flows past the old mill" for i in range(120))  # many windows


async def test_only_a_rewrite_or_a_long_memory_pays_the_stale_part_delete(
    engine: MemoryEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    index = unwrap(engine.vectors)
    beyond = index._delete_parts_beyond  # type: ignore[attr-defined]
    removed: list[dict[UUID, int]] = []

    async def spy(session_id: str, keep: Mapping[UUID, int]) -> None:
        removed.append(dict(keep))
        await beyond(session_id, keep)

    monkeypatch.setattr(index, "_delete_parts_beyond", spy)
    _short, long = await engine.create_episodes("s1", [new("a short note"), new(LONG)])
    assert len(removed) == 1 and set(removed[0]) == {long.id}  # the new short one: none
    await engine.update_episode("s1", long.id, EpisodeUpdate(content="now short"))
    assert removed[-1] == {long.id: 0}  # a rewrite drops the parts it had


async def test_the_reconciler_embeds_and_writes_long_memories_in_bounded_steps(
    engine: MemoryEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    eps = await engine.create_episodes("s1", [new(f"{k} {LONG}") for k in range(3)])
    await engine.records.mark_pending("s1", [e.id for e in eps])
    monkeypatch.setattr(kinds, "_MAX_WINDOWS", 10)  # fewer than one memory has
    index = unwrap(engine.vectors)
    upsert = index.upsert
    batches: list[int] = []

    async def spy(session_id: str, items: Sequence[VectorItem]) -> None:
        batches.append(len(items))
        await upsert(session_id, items)

    monkeypatch.setattr(index, "upsert", spy)
    assert (await engine.reconcile()).indexed == 3
    assert batches == [1, 1, 1]


COMPARING = (
    "Which happened first, the purchase of the coffee maker or the malfunction of the stand mixer?"
)


@pytest.mark.parametrize("fault", ["index", "embedder"])
async def test_a_comparison_whose_events_fail_is_ranked_by_the_query_alone(
    engine: MemoryEngine, fault: str, caplog: pytest.LogCaptureFixture
) -> None:
    # The index failing between the main search and the events' one, or the embedder
    # refusing the events after it embedded the query, is a timing no real store shows on
    # demand: the stand-ins are autospec'd to the real classes and pass everything else on.
    texts = ["I bought a coffee maker last spring", "my stand mixer broke at the dinner party"]
    await engine.create_episodes("s1", [new(t) for t in texts])
    real_vectors, real_embedder = engine.vectors, engine.embedder
    if fault == "index":
        engine.vectors = index_failing_within(engine.vectors)
    else:
        embedder = create_autospec(EmbeddingService, instance=True)
        embedder.embed_one.side_effect = real_embedder.embed_one
        embedder.embed_many.side_effect = EmbeddingError("model failed")
        engine.embedder = embedder
    try:
        with caplog.at_level(logging.WARNING, logger="ww.engine.comparisons"):
            result = await engine.recall_episodes("s1", COMPARING, limit=5, learn=False)
    finally:
        engine.vectors, engine.embedder = real_vectors, real_embedder

    assert not result.degraded and len(result.hits) == 2
    query = await real_embedder.embed_one(COMPARING)
    memories = await real_embedder.embed_many(texts)
    for hit in result.hits:
        cos = float(memories[texts.index(hit.episode.content)] @ query)
        assert hit.score_parts.semantic == pytest.approx(max(0.0, cos), abs=1e-4)
    assert "recall uses the query alone" in caplog.text
    assert "coffee" not in caplog.text  # nothing of the query reaches the log


async def test_keyword_only_candidates_the_index_cannot_score_leave_a_degraded_recall(
    engine: MemoryEngine, caplog: pytest.LogCaptureFixture
) -> None:
    # The index answering the dense search and then failing the keyword-only candidates'
    # search is a timing no real store shows on demand: the stand-in is autospec'd to the
    # real class and passes the dense search on.
    dinners = [
        f"we cooked {dish} for dinner on friday"
        for dish in ("lasagna", "curry", "paella", "soup", "tacos")
    ]
    rare = "the zq7 invoice went to the accountant"
    await engine.create_episodes("s1", [new(t) for t in [*dinners, rare]])
    engine.candidates = 2  # the dense top 2 are dinners; the rare word's memory is keyword-only
    real_vectors = engine.vectors
    engine.vectors = index = index_failing_within(engine.vectors)
    query = "which dish did we cook for dinner on friday, zq7"
    try:
        with caplog.at_level(logging.WARNING, logger="ww.engine.memory"):
            result = await engine.recall_episodes(
                "s1", query, limit=2, learn=False, preset=Preset.KEYWORD
            )
    finally:
        engine.vectors = real_vectors

    assert any(c.kwargs.get("within") for c in index.search.call_args_list)
    assert result.degraded and result.hits
    (rare_hit,) = [h for h in result.hits if h.episode.content == rare]
    assert rare_hit.score_parts.semantic == 0.0 and rare_hit.score_parts.keyword == 1.0
    assert "ranked without their cosine" in caplog.text
    assert "zq7" not in caplog.text and "dinner" not in caplog.text
