"""Start-up after a clean close trusts sessions whose store counts agree; after a crash
(no clean close) it compares both stores id by id, as it always did."""

from __future__ import annotations

import asyncio
import logging
from unittest.mock import patch
from uuid import UUID, uuid4

import numpy as np
import pytest

from tests.conftest import ManualClock
from ww.config import Settings, VectorBackend
from ww.embedding import EmbeddingService, OnnxEmbedder
from ww.engine import MemoryEngine, build_engine, build_semantic
from ww.engine.maintenance import Maintenance
from ww.models import EpisodeCreate
from ww.models.semantic import EntityCreate
from ww.storage import QdrantEdgeIndex, VectorItem
from ww.storage.guarded import unwrap
from ww.storage.ports import StoreUnavailableError


def engine_on(settings: Settings, embedder: OnnxEmbedder, clock: ManualClock) -> MemoryEngine:
    service = EmbeddingService(embedder, cache_size=64, batch_size=16)
    return build_engine(settings, clock=clock, embedder=service)


async def next_start_trusts(settings: Settings, embedder: OnnxEmbedder, clock: ManualClock) -> bool:
    """Whether a new engine's start finds the stores closed cleanly (it closes again)."""
    eng = engine_on(settings, embedder, clock)
    await eng.open()
    await eng.close()
    return eng.closed_cleanly_before


async def reopened_after_a_clean_close(
    settings: Settings, embedder: OnnxEmbedder, clock: ManualClock
) -> MemoryEngine:
    """An engine started on one memory after a clean close: its ids not compared yet."""
    first = engine_on(settings, embedder, clock)
    await first.open()
    await first.create_episodes("s1", [EpisodeCreate(content="a tide note")])
    await first.close()
    eng = engine_on(settings, embedder, clock)
    await eng.open()
    assert eng.ids_unverified
    return eng


async def written(eng: MemoryEngine) -> dict[str, list[UUID]]:
    """Three memories in s1, two in s2."""
    out: dict[str, list[UUID]] = {}
    for session, n in (("s1", 3), ("s2", 2)):
        made = await eng.create_episodes(
            session, [EpisodeCreate(content=f"{session} note {i} about tides") for i in range(n)]
        )
        out[session] = [e.id for e in made]
    return out


async def pull_apart(eng: MemoryEngine, ids: dict[str, list[UUID]]) -> UUID:
    """What writes that failed halfway or raced a delete can leave, made through the raw
    stores (the close mark is not touched): in s1 one vector lost and one vector without an
    indexed record, so its counts still agree; in s2 one vector lost, so its counts differ.
    Returns the extra vector's id."""
    await eng.records.open()
    await eng.vectors.open()
    try:
        orphan = uuid4()
        unit = np.full(384, 1 / np.sqrt(384), dtype=np.float32)
        await eng.vectors.upsert("s1", [VectorItem(orphan, unit, {"session_id": "s1"})])
        await eng.vectors.delete("s1", [ids["s1"][0]])
        await eng.vectors.delete("s2", [ids["s2"][0]])
    finally:
        await eng.vectors.close()
        await eng.records.close()
    return orphan


async def test_a_clean_close_lets_start_up_skip_sessions_whose_counts_agree(
    settings: Settings,
    onnx_embedder: OnnxEmbedder,
    clock: ManualClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    first = engine_on(settings, onnx_embedder, clock)
    assert first.mark.vouch  # the embedded tier: one process owns the stores
    await first.open()
    assert not first.closed_cleanly_before  # a new directory has no mark: open
    ids = await written(first)
    await first.close()

    orphan = await pull_apart(engine_on(settings, onnx_embedder, clock), ids)

    again = engine_on(settings, onnx_embedder, clock)
    report = await again.open()
    try:
        assert again.closed_cleanly_before
        # s2's counts differ, so it was compared and its lost vector restored; s1's agree,
        # so it was trusted (its lost vector and its orphan stay until the next full pass).
        assert (report.indexed, report.orphans_removed) == (1, 0)
        assert await again.vectors.ids("s2") == set(ids["s2"])
        assert await again.vectors.ids("s1") == {*ids["s1"][1:], orphan}
        # ... until the first maintenance pass, which compares every id once.
        assert again.ids_unverified
        upkeep = Maintenance(again, grace_s=0.0)
        with caplog.at_level(logging.INFO, logger="ww.engine.maintenance"):
            await upkeep.run_once()
        assert not again.ids_unverified
        assert "1 re-indexed, 1 orphan vectors removed" in caplog.text
        assert await again.vectors.ids("s1") == set(ids["s1"])
    finally:
        await again.close()


async def test_after_a_crash_start_up_compares_every_id(
    settings: Settings, onnx_embedder: OnnxEmbedder, clock: ManualClock
) -> None:
    first = engine_on(settings, onnx_embedder, clock)
    await first.open()
    ids = await written(first)
    # A crash: the stores go away without the engine's close, so the mark stays "open".
    await first.vectors.close()
    await first.records.close()

    orphan = await pull_apart(engine_on(settings, onnx_embedder, clock), ids)

    again = engine_on(settings, onnx_embedder, clock)
    report = await again.open()
    try:
        assert not again.closed_cleanly_before
        assert (report.indexed, report.orphans_removed) == (2, 1)
        assert await again.vectors.ids("s1") == set(ids["s1"])
        assert orphan not in await again.vectors.ids("s1")
        assert await again.vectors.ids("s2") == set(ids["s2"])
    finally:
        await again.close()
    # That close was clean: the next start trusts the (now agreeing) counts.
    last = engine_on(settings, onnx_embedder, clock)
    await last.open()
    assert last.closed_cleanly_before
    await last.close()


async def test_entities_are_compared_id_by_id_even_after_a_clean_close(
    settings: Settings, onnx_embedder: OnnxEmbedder, clock: ManualClock
) -> None:
    # The mark vouches for the episodes only: a process that opens the engine alone
    # (a script, a benchmark) closes it cleanly without ever opening the entities.
    eng = engine_on(settings, onnx_embedder, clock)
    await eng.open()
    semantic = build_semantic(settings, eng)
    await semantic.open()
    kept = await semantic.create("s1", EntityCreate(name="Tide tables"))
    lost = await semantic.create("s1", EntityCreate(name="Harbour master"))
    await semantic.close()
    await eng.close()

    eng = engine_on(settings, onnx_embedder, clock)
    semantic = build_semantic(settings, eng)
    await semantic.vectors.open()
    orphan = uuid4()
    unit = np.full(384, 1 / np.sqrt(384), dtype=np.float32)
    await semantic.vectors.upsert("s1", [VectorItem(orphan, unit, {"session_id": "s1"})])
    await semantic.vectors.delete("s1", [lost.id])  # counts still agree
    await semantic.vectors.close()

    await eng.open()
    assert eng.closed_cleanly_before
    semantic = build_semantic(settings, eng)
    report = await semantic.open()
    try:
        assert (report.indexed, report.orphans_removed) == (1, 1)
        assert await semantic.vectors.ids("s1") == {kept.id, lost.id}
    finally:
        await semantic.close()
        await eng.close()


async def test_an_open_that_cannot_vouch_still_clears_the_mark(
    settings: Settings, onnx_embedder: OnnxEmbedder, clock: ManualClock
) -> None:
    """A run that cannot vouch for the stores (SQLite beside a Qdrant server) writes to them
    all the same: it must not leave an older clean mark for the next embedded start."""
    first = engine_on(settings, onnx_embedder, clock)
    await first.open()
    await first.close()
    other = engine_on(settings, onnx_embedder, clock)
    other.mark.vouch = False
    await other.open()
    assert not other.closed_cleanly_before
    await other.close()
    assert not await next_start_trusts(settings, onnx_embedder, clock)


async def test_only_the_process_that_opened_last_may_mark_a_clean_close(
    settings: Settings, onnx_embedder: OnnxEmbedder, clock: ManualClock
) -> None:
    async def crash(eng: MemoryEngine) -> None:
        await eng.vectors.close()
        await eng.records.close()

    first = engine_on(settings, onnx_embedder, clock)
    await first.open()
    # first's close has released the vector index when another process opens the stores;
    # only then does first come to write its mark.
    token = first.mark.disarm()
    await first.vectors.close()
    second = engine_on(settings, onnx_embedder, clock)
    await second.open()
    await first.mark.leave(token, verified=True)
    await first.records.close()
    await crash(second)
    assert not await next_start_trusts(settings, onnx_embedder, clock)
    # A second close of a closed engine marks nothing (and fails nothing).
    third = engine_on(settings, onnx_embedder, clock)
    await third.open()
    await third.close()
    fourth = engine_on(settings, onnx_embedder, clock)
    await fourth.open()
    await third.close()
    await crash(fourth)
    assert not await next_start_trusts(settings, onnx_embedder, clock)


async def test_an_open_that_fails_marks_nothing(
    settings: Settings, onnx_embedder: OnnxEmbedder, clock: ManualClock
) -> None:
    first = engine_on(settings, onnx_embedder, clock)
    await first.open()
    await first.close()
    broken = engine_on(settings, onnx_embedder, clock)
    # A vector index that cannot open (its path is a file): the mark was taken already.
    broken.vectors = QdrantEdgeIndex(settings.data_dir / "ww.sqlite3", 384)
    with pytest.raises(OSError):
        await broken.open()
    await broken.close()
    assert not await next_start_trusts(settings, onnx_embedder, clock)


async def test_a_vector_index_that_fails_to_close_leaves_the_stores_open(
    settings: Settings, onnx_embedder: OnnxEmbedder, clock: ManualClock
) -> None:
    eng = engine_on(settings, onnx_embedder, clock)
    await eng.open()
    index = unwrap(eng.vectors)
    real_close = index.close

    async def flush_fails() -> None:
        await real_close()
        raise StoreUnavailableError("qdrant_edge", "flush failed")

    with (
        patch.object(index, "close", autospec=True, side_effect=flush_fails),
        pytest.raises(StoreUnavailableError),
    ):
        await eng.close()
    assert not await next_start_trusts(
        settings, onnx_embedder, clock
    )  # the records were closed all the same


async def test_a_process_that_stops_before_comparing_passes_the_comparison_on(
    settings: Settings, onnx_embedder: OnnxEmbedder, clock: ManualClock
) -> None:
    short = await reopened_after_a_clean_close(settings, onnx_embedder, clock)
    await short.close()  # before any maintenance pass: nothing verified, nothing vouched
    later = engine_on(settings, onnx_embedder, clock)
    await later.open()
    assert not later.closed_cleanly_before and not later.ids_unverified
    await later.close()


async def test_a_failed_background_comparison_is_tried_again(
    settings: Settings, onnx_embedder: OnnxEmbedder, clock: ManualClock
) -> None:
    eng = await reopened_after_a_clean_close(settings, onnx_embedder, clock)
    records = unwrap(eng.records)
    real = records.indexed_ids
    calls = 0

    async def fails_once(session_id: str) -> set[UUID]:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise StoreUnavailableError("sqlite", "database is locked")
        return await real(session_id)

    upkeep = Maintenance(eng, grace_s=0.0)
    with patch.object(records, "indexed_ids", autospec=True, side_effect=fails_once):
        with pytest.raises(StoreUnavailableError):
            await upkeep.run_once()
        assert eng.ids_unverified
        await upkeep.run_once()
    assert not eng.ids_unverified and calls == 2
    await eng.close()


async def test_a_session_deleted_during_the_background_comparison_leaves_no_vectors(
    settings: Settings, onnx_embedder: OnnxEmbedder, clock: ManualClock
) -> None:
    first = engine_on(settings, onnx_embedder, clock)
    await first.open()
    await written(first)
    await first.close()
    eng = engine_on(settings, onnx_embedder, clock)
    await eng.open()
    upkeep = Maintenance(eng, grace_s=0.0)
    learning = unwrap(eng.learning)
    real = learning.delete_session
    passes: list[asyncio.Future[None]] = []

    async def pass_in_between(session_id: str) -> None:
        # s1's vectors are gone, its records not yet: the background pass comes now. It
        # must wait for the deletion rather than re-index what is being deleted.
        passes.append(asyncio.ensure_future(upkeep.run_once()))
        await asyncio.wait(passes, timeout=1.0)
        await real(session_id)

    with patch.object(learning, "delete_session", autospec=True, side_effect=pass_in_between):
        assert await eng.delete_session("s1")
    await asyncio.gather(*passes)
    assert await eng.records.list_sessions() == ["s2"]
    assert await eng.vectors.ids("s1") == set()
    await eng.close()


async def test_a_close_whose_mark_cannot_be_written_still_closes(
    settings: Settings,
    onnx_embedder: OnnxEmbedder,
    clock: ManualClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    eng = engine_on(settings, onnx_embedder, clock)
    await eng.open()
    await unwrap(eng.records).close()  # the record store is gone before the mark is written
    with caplog.at_level(logging.WARNING, logger="ww.engine.close_mark"):
        await eng.close()
    assert "next start compares them id by id" in caplog.text
    assert not await next_start_trusts(settings, onnx_embedder, clock)


async def test_server_stores_are_always_compared(
    settings: Settings, onnx_embedder: OnnxEmbedder, clock: ManualClock
) -> None:
    # Several processes may share server stores: one's clean close says nothing of another.
    for update in (
        {"qdrant_url": "http://127.0.0.1:6333"},
        {"neo4j_uri": "bolt://127.0.0.1:7687"},
        {"neo4j_uri": "bolt://127.0.0.1:7687", "vector_backend": VectorBackend.NEO4J},
    ):
        shared = settings.model_copy(update=update)
        assert not engine_on(shared, onnx_embedder, clock).mark.vouch


async def test_the_service_marks_a_clean_close_when_it_stops(
    settings: Settings, onnx_embedder: OnnxEmbedder, clock: ManualClock
) -> None:
    from ww.api.app import create_app

    for expected in (False, True):
        engine = engine_on(settings, onnx_embedder, clock)
        app = create_app(settings, engine=engine)
        async with app.router.lifespan_context(app):
            assert engine.closed_cleanly_before is expected
            assert engine.ids_unverified is expected
