"""Feedback and the learning dynamics through the engine, on the real embedded stores."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any
from unittest.mock import patch

import numpy as np
import pytest

from tests.conftest import ManualClock
from ww.config import Settings
from ww.control.flags import MECHANISMS, Flags
from ww.embedding import EmbeddingService, OnnxEmbedder
from ww.engine import (
    MemoryEngine,
    MemoryNotInRecallError,
    RecallNotFoundError,
    build_engine,
)
from ww.engine.ff_encoder import FFEncoder
from ww.models import EpisodeCreate, RecallResult
from ww.storage import QdrantEdgeIndex
from ww.storage.guarded import unwrap
from ww.storage.ports.learning import EncoderBlob

TEXTS = [
    "The billing service deploy failed on Friday because the migration timed out",
    "Ana fixed the billing migration by splitting it into batches",
    "We had pizza for lunch after the retro",
    "The staging database ran out of disk space",
    "Postgres was upgraded to version 16 last week",
]
QUERY = "why did the billing deploy fail?"
# Every mechanism on, whatever the defaults (some default to off, see flags.py).
ALL_ON = {m: True for m in MECHANISMS}

EngineCtx = Callable[..., Any]


@pytest.fixture
def open_engine(settings: Settings, onnx_embedder: OnnxEmbedder, clock: ManualClock) -> EngineCtx:
    @asynccontextmanager
    async def ctx(**flags: bool) -> AsyncIterator[MemoryEngine]:
        service = EmbeddingService(onnx_embedder, cache_size=64, batch_size=16)
        eng = build_engine(settings, clock=clock, embedder=service, flags=Flags(**flags))
        await eng.open()
        try:
            yield eng
        finally:
            await eng.close()

    return ctx


async def seed(eng: MemoryEngine, session: str = "s1") -> list[Any]:
    eps = await eng.create_episodes(session, [EpisodeCreate(content=t) for t in TEXTS])
    return [e.id for e in eps]


def ranking(r: RecallResult) -> list[tuple[Any, float, dict[str, float]]]:
    return [(h.id, h.score, h.score_parts.model_dump()) for h in r.hits]


async def test_feedback_updates_value_fsrs_and_is_idempotent(
    open_engine: EngineCtx, clock: ManualClock
) -> None:
    async with open_engine(**ALL_ON) as eng:
        await seed(eng)
        clock.advance(hours=1)
        res = await eng.recall_episodes("s1", QUERY, limit=3)
        top = res.hits[0].id
        before = await eng.get_episode("s1", top)
        (out,) = await eng.feedback("s1", res.recall_id, rewards={top: 1.0})
        assert out.labile and out.error == 0.5
        # three-factor: V = 0.5 + 0.3 * e * 0.5 with e = 1 (retrieved just now)
        assert out.value_after == pytest.approx(0.65)
        after = await eng.get_episode("s1", top)
        assert before is not None and after is not None
        assert after.value == pytest.approx(0.65)
        assert after.fsrs.stability > before.fsrs.stability  # Good review
        assert out.encoder_trained and out.vector_moved
        # a repeat returns the same outcome and changes nothing
        (again,) = await eng.feedback("s1", res.recall_id, rewards={top: 0.0})
        assert again == out
        assert await eng.get_episode("s1", top) == after
        # the recall-wide reward applies to the other memories, once
        outs = await eng.feedback("s1", res.recall_id, reward=0.0)
        assert [o.memory_id for o in outs] == [h.id for h in res.hits]
        assert outs[0] == out
        assert all(o.error == -0.5 for o in outs[1:])


async def test_zero_error_feedback_changes_nothing(open_engine: EngineCtx) -> None:
    async with open_engine(**ALL_ON) as eng:
        await seed(eng)
        res = await eng.recall_episodes("s1", QUERY, limit=3)
        ids = [h.id for h in res.hits]
        before = await eng.records.get_episodes("s1", ids)
        vectors = await eng.vectors.get_vectors("s1", ids)
        outs = await eng.feedback("s1", res.recall_id, reward=0.5)  # V is 0.5: no error
        assert all(o.error == 0 and o.value_after == o.value_before for o in outs)
        assert await eng.records.get_episodes("s1", ids) == before
        after_vectors = await eng.vectors.get_vectors("s1", ids)
        assert all(np.array_equal(vectors[i], after_vectors[i]) for i in ids)
        assert await eng.learning.encoder_version("s1") == 0
        assert await eng.learning.memory_states("s1", ids) == await eng.learning.memory_states(
            "s1", ids
        )
        assert all(s.rewards == 0 for s in (await eng.learning.memory_states("s1", ids)).values())


async def test_unknown_foreign_and_read_only_recalls_are_not_found(
    open_engine: EngineCtx,
) -> None:
    async with open_engine() as eng:
        ids = await seed(eng)
        await seed(eng, "s2")
        res = await eng.recall_episodes("s1", QUERY, limit=2)
        with pytest.raises(RecallNotFoundError):
            await eng.feedback("s2", res.recall_id, reward=1.0)
        ro = await eng.recall_episodes("s1", QUERY, limit=2, learn=False)
        with pytest.raises(RecallNotFoundError):
            await eng.feedback("s1", ro.recall_id, reward=1.0)
        not_returned = next(i for i in ids if i not in {h.id for h in res.hits})
        with pytest.raises(MemoryNotInRecallError):
            await eng.feedback("s1", res.recall_id, rewards={not_returned: 1.0})


async def test_restart_gives_identical_recall_after_learning(
    open_engine: EngineCtx, clock: ManualClock
) -> None:
    async with open_engine(**ALL_ON) as eng:
        await seed(eng)
        for q, good in ((QUERY, 1), ("what happened to the billing migration?", 1)):
            clock.advance(hours=1)
            res = await eng.recall_episodes("s1", q, limit=4)
            rewards = {h.id: 1.0 if i < good else 0.0 for i, h in enumerate(res.hits)}
            await eng.feedback("s1", res.recall_id, rewards=rewards)
        assert await eng.learning.encoder_version("s1") > 0
        clock.advance(hours=1)
        before = await eng.recall_episodes("s1", QUERY, limit=5, learn=False)
        assert any(h.score_parts.value != 0.5 for h in before.hits)
        assert any(h.score_parts.ff != 0.5 for h in before.hits)
        assert any(h.score_parts.spread > 0 for h in before.hits)
    async with open_engine(**ALL_ON) as eng:
        after = await eng.recall_episodes("s1", QUERY, limit=5, learn=False)
    assert ranking(after) == ranking(before)


async def test_learning_in_one_session_leaves_another_alone(
    open_engine: EngineCtx, clock: ManualClock
) -> None:
    async with open_engine(**ALL_ON) as eng:
        await seed(eng, "a")
        await seed(eng, "b")
        start = clock.now
        b_before = await eng.recall_episodes("b", QUERY, limit=5, learn=False)
        for _ in range(3):
            clock.advance(minutes=10)
            res = await eng.recall_episodes("a", QUERY, limit=5)
            await eng.feedback("a", res.recall_id, rewards={res.hits[-1].id: 1.0})
        assert await eng.learning.encoder_version("a") > 0
        assert await eng.learning.encoder_version("b") == 0
        clock.now = start  # the same instant, so only learning could differ
        b_after = await eng.recall_episodes("b", QUERY, limit=5, learn=False)
        assert ranking(b_after) == ranking(b_before)


# -- each flag: the mechanism acts when on and not when off ---------------------------------
@pytest.mark.parametrize("on", [True, False])
async def test_flag_fsrs(open_engine: EngineCtx, clock: ManualClock, on: bool) -> None:
    async with open_engine(fsrs=on) as eng:
        await seed(eng)
        clock.advance(days=2)
        res = await eng.recall_episodes("s1", QUERY, limit=1)
        assert (res.hits[0].score_parts.retrievability > 0) is on
        # the FSRS state is kept either way; the flag decides whether it ranks
        ep = await eng.get_episode("s1", res.hits[0].id)
        assert ep is not None and ep.fsrs.reps == 1
        marked = await eng.mark_important("s1", res.hits[0].id, 1.0)
        assert marked is not None and marked.fsrs.stability > ep.fsrs.stability


@pytest.mark.parametrize("on", [True, False])
async def test_flag_actr(open_engine: EngineCtx, clock: ManualClock, on: bool) -> None:
    async with open_engine(actr=on) as eng:
        await seed(eng)
        first = await eng.recall_episodes("s1", QUERY, limit=1, learn=False)
        assert first.hits[0].score_parts.activation == 0.0  # never retrieved
        await eng.recall_episodes("s1", QUERY, limit=1)
        clock.advance(days=1)
        again = await eng.recall_episodes("s1", QUERY, limit=1, learn=False)
        # one access a day ago: logistic(ln 1) = 0.5
        assert again.hits[0].score_parts.activation == (pytest.approx(0.5) if on else 0.0)


@pytest.mark.parametrize("on", [True, False])
async def test_flag_hebbian(open_engine: EngineCtx, on: bool) -> None:
    async with open_engine(hebbian=on) as eng:
        await seed(eng)
        res = await eng.recall_episodes("s1", QUERY, limit=3)
        edges = await eng.learning.edges("s1", [h.id for h in res.hits])
        assert len(edges) == (3 if on else 0)
        assert all(e.weight == pytest.approx(0.1) for e in edges)  # 0 + η (1 - 0)


@pytest.mark.parametrize("on", [True, False])
async def test_flag_spreading_activation(open_engine: EngineCtx, on: bool) -> None:
    async with open_engine(spreading_activation=on, hebbian=True) as eng:
        await seed(eng)
        await eng.recall_episodes("s1", QUERY, limit=3)  # co-retrieval makes edges
        res = await eng.recall_episodes("s1", QUERY, limit=5, learn=False)
        assert any(h.score_parts.spread > 0 for h in res.hits) is on
        assert any(h.score_parts.neighbour > 0 for h in res.hits) is on


@pytest.mark.parametrize("on", [True, False])
async def test_flag_three_factor_learning(open_engine: EngineCtx, on: bool) -> None:
    async with open_engine(three_factor_learning=on) as eng:
        await seed(eng)
        res = await eng.recall_episodes("s1", QUERY, limit=2)
        (out,) = await eng.feedback("s1", res.recall_id, rewards={res.hits[0].id: 1.0})
        # on: 0.5 + 0.3 * 1 * 0.5; off: running mean of the prior 0.5 and 1
        assert out.value_after == pytest.approx(0.65 if on else 1.0)
        both = await eng.feedback("s1", res.recall_id, rewards={res.hits[1].id: 1.0})
        assert (both[0].edges_changed == 1) is on  # reward-modulated Hebbian between the two


@pytest.mark.parametrize("on", [True, False])
async def test_flag_lability_window(open_engine: EngineCtx, clock: ManualClock, on: bool) -> None:
    async with open_engine(lability_window=on, reconsolidation=True) as eng:
        await seed(eng)
        res = await eng.recall_episodes("s1", QUERY, limit=2)
        first, second = (h.id for h in res.hits)
        vec = (await eng.vectors.get_vectors("s1", [first]))[first]
        (fresh,) = await eng.feedback("s1", res.recall_id, rewards={first: 1.0})
        assert fresh.vector_moved is on
        moved = (await eng.vectors.get_vectors("s1", [first]))[first]
        assert (not np.array_equal(vec, moved)) is on
        if on:
            assert float(np.linalg.norm(moved - vec)) <= 0.1  # norm-capped step
        clock.advance(hours=7)  # outside the 6 h window
        (late,) = await eng.feedback("s1", res.recall_id, rewards={second: 1.0})
        assert late.labile is not on
        assert (late.value_after == late.value_before) is on


@pytest.mark.parametrize("on", [True, False])
async def test_flag_reconsolidation(open_engine: EngineCtx, on: bool) -> None:
    async with open_engine(reconsolidation=on) as eng:
        await seed(eng)
        res = await eng.recall_episodes("s1", QUERY, limit=2)
        top = res.hits[0].id
        vec = (await eng.vectors.get_vectors("s1", [top]))[top]
        (out,) = await eng.feedback("s1", res.recall_id, rewards={top: 1.0})
        assert out.vector_moved is on
        moved = (await eng.vectors.get_vectors("s1", [top]))[top]
        assert (not np.array_equal(vec, moved)) is on
        query = await eng.embedder.embed_one(QUERY)
        # toward the query, by a capped step
        assert (float(moved @ query) > float(vec @ query)) is on
        assert float(np.linalg.norm(moved - vec)) <= 0.1


@pytest.mark.parametrize("on", [True, False])
async def test_flag_ff_encoder(open_engine: EngineCtx, on: bool) -> None:
    async with open_engine(ff_encoder=on, lability_window=False) as eng:
        await seed(eng)
        res = await eng.recall_episodes("s1", QUERY, limit=3)
        assert all(h.score_parts.ff == (0.5 if on else 0.0) for h in res.hits)
        await eng.feedback("s1", res.recall_id, rewards={res.hits[0].id: 1.0})
        assert await eng.learning.encoder_version("s1") == (1 if on else 0)
        after = await eng.recall_episodes("s1", QUERY, limit=3, learn=False)
        top = next(h for h in after.hits if h.id == res.hits[0].id)
        assert (top.score_parts.ff > 0.5) is on


@pytest.mark.parametrize("on", [True, False])
async def test_flag_query_feedback(open_engine: EngineCtx, clock: ManualClock, on: bool) -> None:
    async with open_engine(query_feedback=on) as eng:
        await seed(eng)
        res = await eng.recall_episodes("s1", QUERY, limit=3)
        up, down, late = (h.id for h in res.hits)
        outs = await eng.feedback("s1", res.recall_id, rewards={up: 1.0, down: 0.0})
        v = {o.memory_id: o.value_after for o in outs}
        assert v[up] > 0.5 > v[down]

        async def values(query: str) -> dict[Any, float]:
            got = await eng.recall_episodes("s1", query, limit=len(TEXTS), learn=False)
            return {h.id: h.score_parts.value for h in got.hits}

        # Asked again, the rating counts in full beside the memory's own value (which
        # weighs as one rating); without the flag the value alone.
        same = await values(QUERY)
        assert same[up] == pytest.approx((v[up] + 1.0) / 2 if on else v[up])
        assert same[down] == pytest.approx(v[down] / 2 if on else v[down])
        # A question unlike the rated one sees each memory's own value either way.
        other = await values("what did we have for lunch after the retro?")
        assert other == {m: pytest.approx(v.get(m, 0.5)) for m in other}
        # Outside the lability window a rating changes nothing, for this query neither.
        clock.advance(hours=7)
        (out,) = await eng.feedback("s1", res.recall_id, rewards={late: 1.0})
        assert not out.labile
        assert (await values(QUERY))[late] == 0.5


async def test_an_encoder_another_worker_trained_replaces_the_cached_one(
    open_engine: EngineCtx,
) -> None:
    """Workers share the stores, not their memory: the encoder version a recall reads with
    its candidates' learned state tells it that the encoder it cached is out of date."""
    async with open_engine(ff_encoder=True) as eng:
        await seed(eng)
        res = await eng.recall_episodes("s1", QUERY, limit=3, learn=False)
        assert all(h.score_parts.ff == 0.5 for h in res.hits)  # the identity, now cached
        # Another worker's feedback: a trained encoder written straight to the shared store.
        top = res.hits[0].id
        query = await eng.embedder.embed_one(QUERY)
        vector = (await eng.vectors.get_vectors("s1", [top]))[top]
        trained = FFEncoder.identity(len(query)).train(query, vector, positive=True, rate=0.5)
        blob = EncoderBlob(trained.version, trained.to_bytes())
        assert await eng.learning.save_encoder("s1", blob, expected_version=0)
        store = type(unwrap(eng.recall_learning.learning))  # the real class, not its guard
        with patch.object(
            store, "encoder_version", autospec=True, side_effect=store.encoder_version
        ) as version_reads:
            after = await eng.recall_episodes("s1", QUERY, limit=3, learn=False)
        # The version came with the candidates' learned state, not from a read of its own.
        version_reads.assert_not_called()
        assert next(h for h in after.hits if h.id == top).score_parts.ff > 0.5


async def test_deleting_a_session_forgets_its_learning(open_engine: EngineCtx) -> None:
    async with open_engine() as eng:
        await seed(eng)
        res = await eng.recall_episodes("s1", QUERY, limit=3)
        await eng.feedback("s1", res.recall_id, reward=1.0)
        await eng.delete_session("s1")
        assert await eng.learning.encoder_version("s1") == 0
        assert await eng.learning.get_recall("s1", res.recall_id) is None
        assert await eng.learning.memory_states("s1", [h.id for h in res.hits]) == {}


async def test_vector_outage_degrades_learning_instead_of_failing(
    open_engine: EngineCtx, settings: Settings
) -> None:
    async with open_engine(**ALL_ON) as eng:
        await seed(eng)
        res = await eng.recall_episodes("s1", QUERY, limit=3)
        await eng.feedback("s1", res.recall_id, rewards={res.hits[0].id: 1.0})
        assert await eng.learning.encoder_version("s1") == 1
        await eng.vectors.close()  # the index goes away for real
        degraded = await eng.recall_episodes("s1", "billing deploy", limit=3)
        assert degraded.degraded and degraded.hits
        assert all(h.score_parts.ff == 0.5 for h in degraded.hits)  # no vectors: no opinion
        outs = await eng.feedback("s1", degraded.recall_id, rewards={degraded.hits[0].id: 1.0})
        assert not outs[0].vector_moved and not outs[0].encoder_trained
        assert outs[0].value_after > outs[0].value_before  # the record side still learns
        eng.vectors = QdrantEdgeIndex(settings.data_dir / "vectors", settings.embedding_dimension)
        await eng.vectors.open()
