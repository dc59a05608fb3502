"""Start-up after a clean close trusts sessions whose store counts agree; after a crash
(no clean close) it compares both stores id by id, as it always did."""

from __future__ import annotations

from uuid import UUID, uuid4

import numpy as np

from tests.conftest import ManualClock
from ww.config import Settings
from ww.embedding import EmbeddingService, OnnxEmbedder
from ww.engine import MemoryEngine, build_engine, build_semantic
from ww.models import EpisodeCreate
from ww.models.semantic import EntityCreate
from ww.storage import VectorItem


def engine_on(settings: Settings, embedder: OnnxEmbedder, clock: ManualClock) -> MemoryEngine:
    service = EmbeddingService(embedder, cache_size=64, batch_size=16)
    return build_engine(settings, clock=clock, embedder=service)


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
    """What a write that failed halfway can leave, through the raw stores (the close mark is
    not touched): in s1 one vector lost and one orphan added, so its counts still agree; in
    s2 one vector lost, so its counts differ. Returns the orphan's id."""
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
    settings: Settings, onnx_embedder: OnnxEmbedder, clock: ManualClock
) -> None:
    first = engine_on(settings, onnx_embedder, clock)
    assert first.close_mark  # the embedded tier: one process owns the stores
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
        full = await again.reconcile()  # what maintenance can still ask for by hand
        assert (full.indexed, full.orphans_removed) == (1, 1)
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


async def test_other_kinds_compare_a_session_whose_counts_differ(
    settings: Settings, onnx_embedder: OnnxEmbedder, clock: ManualClock
) -> None:
    eng = engine_on(settings, onnx_embedder, clock)
    await eng.open()
    semantic = build_semantic(settings, eng)
    await semantic.open()
    entity = await semantic.create("s1", EntityCreate(name="Tide tables"))
    await semantic.close()
    await eng.close()

    eng = engine_on(settings, onnx_embedder, clock)
    semantic = build_semantic(settings, eng)
    await semantic.vectors.open()
    await semantic.vectors.delete("s1", [entity.id])  # lost after a clean close
    await semantic.vectors.close()

    await eng.open()
    assert eng.closed_cleanly_before
    semantic = build_semantic(settings, eng)
    report = await semantic.open(trust_counts=eng.closed_cleanly_before)
    try:
        assert report.indexed == 1
        assert await semantic.vectors.ids("s1") == {entity.id}
    finally:
        await semantic.close()
        await eng.close()


async def test_server_stores_are_always_compared(
    settings: Settings, onnx_embedder: OnnxEmbedder, clock: ManualClock
) -> None:
    # Several processes may share server stores: one's clean close says nothing of another.
    shared = settings.model_copy(update={"qdrant_url": "http://127.0.0.1:6333"})
    assert not engine_on(shared, onnx_embedder, clock).close_mark
