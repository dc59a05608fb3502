"""EmbeddingService: cache, micro-batching, loops and shutdown."""

from __future__ import annotations

import asyncio
import gc
import hashlib
import logging
import threading
import time
from collections.abc import AsyncIterator, Iterator, Sequence

import numpy as np
import numpy.typing as npt
import pytest

from ww.embedding import Embedder, EmbeddingError, EmbeddingService, OnnxEmbedder
from ww.embedding.service import BATCH_OBSERVERS


class CountingEmbedder:
    """A small real Embedder: a deterministic vector per text, recording each embed() call."""

    def __init__(self, dimension: int = 8, delay_s: float = 0.0, fail_on: str | None = None):
        self._dimension = dimension
        self._delay_s = delay_s
        self._fail_on = fail_on
        self._lock = threading.Lock()
        self.calls: list[list[str]] = []

    @property
    def model_id(self) -> str:
        return "counting"

    @property
    def dimension(self) -> int:
        return self._dimension

    def vector_for(self, text: str) -> npt.NDArray[np.float32]:
        seed = int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little")
        vector = np.random.default_rng(seed).standard_normal(self._dimension)
        return (vector / np.linalg.norm(vector)).astype(np.float32)

    def embed(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        with self._lock:
            self.calls.append(list(texts))
        if self._delay_s:
            time.sleep(self._delay_s)
        if self._fail_on is not None and self._fail_on in texts:
            raise EmbeddingError(f"cannot embed {self._fail_on!r}")
        rows = [self.vector_for(t) for t in texts]
        return np.array(rows, dtype=np.float32).reshape(len(texts), self._dimension)


class CountingWrapper:
    """Counts embed() calls of another embedder, to watch batching on the real model."""

    def __init__(self, inner: Embedder) -> None:
        self._inner = inner
        self.calls: list[int] = []

    @property
    def model_id(self) -> str:
        return self._inner.model_id

    @property
    def dimension(self) -> int:
        return self._inner.dimension

    def embed(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        self.calls.append(len(texts))
        return self._inner.embed(texts)


@pytest.fixture
def counting() -> CountingEmbedder:
    return CountingEmbedder()


@pytest.fixture
async def service(counting: CountingEmbedder) -> AsyncIterator[EmbeddingService]:
    svc = EmbeddingService(counting, cache_size=100, batch_size=32, max_wait_ms=5)
    yield svc
    await svc.aclose()


def test_counting_embedder_is_an_embedder() -> None:
    assert isinstance(CountingEmbedder(), Embedder)


async def test_properties(service: EmbeddingService) -> None:
    assert service.model_id == "counting"
    assert service.dimension == 8


async def test_cache_hit_skips_the_model(
    service: EmbeddingService, counting: CountingEmbedder
) -> None:
    first = await service.embed_one("hello")
    second = await service.embed_one("hello")
    np.testing.assert_array_equal(first, second)
    np.testing.assert_array_equal(first, counting.vector_for("hello"))
    assert counting.calls == [["hello"]]
    stats = service.stats
    assert (stats.cache_hits, stats.cache_misses, stats.batches, stats.items_embedded) == (
        1,
        1,
        1,
        1,
    )
    assert stats.cache_entries == 1


async def test_cache_is_shared_by_all_entry_points(
    service: EmbeddingService, counting: CountingEmbedder
) -> None:
    await service.embed_many(["a", "b"])
    await service.embed_one("a")
    service.embed_sync(["b", "a"])
    assert counting.calls == [["a", "b"]]
    assert service.stats.cache_hits == 3


async def test_embed_many_without_the_cache_neither_reads_nor_fills_it(
    service: EmbeddingService, counting: CountingEmbedder
) -> None:
    await service.embed_many(["a"])
    rows = await service.embed_many(["a", "b", "b"], cache=False)
    np.testing.assert_array_equal(rows[2], counting.vector_for("b"))
    assert counting.calls == [["a"], ["a", "b"]]
    stats = service.stats
    assert (stats.cache_entries, stats.cache_hits, stats.cache_misses) == (1, 0, 1)
    await service.embed_one("b")  # not cached by the uncached call
    assert counting.calls[-1] == ["b"]


async def test_cache_size_zero_disables_caching(counting: CountingEmbedder) -> None:
    svc = EmbeddingService(counting, cache_size=0, batch_size=32)
    try:
        await svc.embed_one("hello")
        await svc.embed_one("hello")
        svc.embed_sync(["hello"])
        assert counting.calls == [["hello"]] * 3
        assert svc.stats.cache_entries == 0
        assert svc.stats.cache_hits == 0
    finally:
        await svc.aclose()


async def test_lru_evicts_least_recently_used(counting: CountingEmbedder) -> None:
    svc = EmbeddingService(counting, cache_size=2, batch_size=32)
    try:
        for text in ("a", "b", "a", "c"):  # "a" was used after "b", so "c" evicts "b"
            await svc.embed_one(text)
        await svc.embed_one("a")
        assert counting.calls == [["a"], ["b"], ["c"]]
        await svc.embed_one("b")
        assert counting.calls[-1] == ["b"]
        assert svc.stats.cache_entries == 2
    finally:
        await svc.aclose()


async def test_results_cannot_corrupt_the_cache(service: EmbeddingService) -> None:
    expected = (await service.embed_one("x")).copy()
    (await service.embed_one("x"))[:] = 0.0
    (await service.embed_many(["x"]))[:] = 0.0
    service.embed_sync(["x"])[:] = 0.0
    np.testing.assert_array_equal(await service.embed_one("x"), expected)


async def test_concurrent_calls_are_coalesced(
    service: EmbeddingService, counting: CountingEmbedder
) -> None:
    texts = [f"text number {i}" for i in range(20)]
    results = await asyncio.gather(*(service.embed_one(t) for t in texts))
    assert len(counting.calls) < 20
    assert sorted(t for call in counting.calls for t in call) == sorted(texts)
    for text, vector in zip(texts, results, strict=True):
        np.testing.assert_array_equal(vector, counting.vector_for(text))


@pytest.fixture
def told() -> Iterator[list[tuple[int, list[float]]]]:
    """What the batch observers hear (as the metrics do): each model run's size and the
    waits of the queued requests it serves."""
    heard: list[tuple[int, list[float]]] = []

    def observer(size: int, waits: Sequence[float]) -> None:
        heard.append((size, list(waits)))

    BATCH_OBSERVERS.append(observer)
    yield heard
    BATCH_OBSERVERS.remove(observer)


async def test_observers_hear_each_model_run_and_each_queued_wait(
    service: EmbeddingService, counting: CountingEmbedder, told: list[tuple[int, list[float]]]
) -> None:
    # Five queued requests for four texts: one run of four, a wait for each request.
    await asyncio.gather(*(service.embed_one(t) for t in ["a", "b", "c", "d", "a"]))
    assert counting.calls == [["a", "b", "c", "d"]]
    [(size, waits)] = told
    assert size == 4 and len(waits) == 5 and all(w >= 0 for w in waits)
    # Answered from the cache: no run, nothing told.
    await service.embed_one("a")
    assert len(told) == 1
    # embed_many and embed_sync do not queue: their runs come with no waits.
    await service.embed_many(["b", "e", "f"])
    service.embed_sync(["g"])
    assert told[1:] == [(2, []), (1, [])]


async def test_coalesced_batches_respect_batch_size(counting: CountingEmbedder) -> None:
    svc = EmbeddingService(counting, cache_size=0, batch_size=8, max_wait_ms=5)
    try:
        texts = [f"t{i}" for i in range(20)]
        results = await asyncio.gather(*(svc.embed_one(t) for t in texts))
        assert all(len(call) <= 8 for call in counting.calls)
        assert 3 <= len(counting.calls) < 20
        for text, vector in zip(texts, results, strict=True):
            np.testing.assert_array_equal(vector, counting.vector_for(text))
    finally:
        await svc.aclose()


async def test_concurrent_duplicates_are_embedded_once(
    service: EmbeddingService, counting: CountingEmbedder
) -> None:
    results = await asyncio.gather(*(service.embed_one("same") for _ in range(5)))
    assert counting.calls == [["same"]]
    for vector in results:
        np.testing.assert_array_equal(vector, counting.vector_for("same"))


async def test_embed_many_dedupes_and_keeps_order(
    service: EmbeddingService, counting: CountingEmbedder
) -> None:
    result = await service.embed_many(["x", "y", "x"])
    assert counting.calls == [["x", "y"]]
    assert result.shape == (3, 8)
    assert result.dtype == np.float32
    np.testing.assert_array_equal(result[0], result[2])
    np.testing.assert_array_equal(result[1], counting.vector_for("y"))


async def test_embed_many_chunks_by_batch_size(counting: CountingEmbedder) -> None:
    svc = EmbeddingService(counting, cache_size=100, batch_size=4, max_wait_ms=1000)
    try:
        started = time.perf_counter()
        result = await svc.embed_many([f"t{i}" for i in range(10)])
        # The coalescing wait (1 s here) applies to embed_one only.
        assert time.perf_counter() - started < 0.5
        assert [len(call) for call in counting.calls] == [4, 4, 2]
        assert result.shape == (10, 8)
        assert svc.embed_sync([f"t{i}" for i in range(10, 15)]).shape == (5, 8)
        assert [len(call) for call in counting.calls] == [4, 4, 2, 4, 1]
    finally:
        await svc.aclose()


async def test_embed_many_groups_texts_of_similar_length(counting: CountingEmbedder) -> None:
    svc = EmbeddingService(counting, cache_size=0, batch_size=3)
    texts = ["a" * n for n in (9, 1, 7, 3, 8, 2, 5)]
    try:
        result = await svc.embed_many(texts)
        # Shortest first, in chunks of the batch size; rows come back in the caller's order.
        assert counting.calls == [["a", "aa", "aaa"], ["a" * 5, "a" * 7, "a" * 8], ["a" * 9]]
        for row, text in zip(result, texts, strict=True):
            np.testing.assert_array_equal(row, counting.vector_for(text))
        svc.embed_sync(["bbbb", "b", "bb"])
        assert counting.calls[-1] == ["b", "bb", "bbbb"]
    finally:
        await svc.aclose()


async def test_empty_requests(service: EmbeddingService, counting: CountingEmbedder) -> None:
    assert (await service.embed_many([])).shape == (0, 8)
    assert service.embed_sync([]).shape == (0, 8)
    assert counting.calls == []


async def test_bad_inputs(service: EmbeddingService) -> None:
    with pytest.raises(TypeError):
        await service.embed_one(42)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        await service.embed_many("one string")
    with pytest.raises(TypeError):
        service.embed_sync(["ok", None])  # type: ignore[list-item]


def test_invalid_configuration(counting: CountingEmbedder) -> None:
    with pytest.raises(ValueError, match="cache_size"):
        EmbeddingService(counting, cache_size=-1, batch_size=1)
    with pytest.raises(ValueError, match="batch_size"):
        EmbeddingService(counting, cache_size=0, batch_size=0)
    with pytest.raises(ValueError, match="max_wait_ms"):
        EmbeddingService(counting, cache_size=0, batch_size=1, max_wait_ms=-1)


async def test_model_errors_reach_the_caller_and_the_service_recovers() -> None:
    svc = EmbeddingService(CountingEmbedder(fail_on="boom"), cache_size=10, batch_size=32)
    try:
        with pytest.raises(EmbeddingError, match="boom"):
            await svc.embed_one("boom")
        with pytest.raises(EmbeddingError, match="boom"):
            await svc.embed_many(["fine", "boom"])
        assert (await svc.embed_one("fine")).shape == (8,)
    finally:
        await svc.aclose()


async def test_cancelled_caller_does_not_break_the_batcher() -> None:
    slow = CountingEmbedder(delay_s=0.05)
    svc = EmbeddingService(slow, cache_size=10, batch_size=32)
    try:
        task = asyncio.create_task(svc.embed_one("slow"))
        await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        np.testing.assert_array_equal(await svc.embed_one("next"), slow.vector_for("next"))
    finally:
        await svc.aclose()


async def test_aclose_stops_the_batcher_and_refuses_new_work(counting: CountingEmbedder) -> None:
    svc = EmbeddingService(counting, cache_size=10, batch_size=32)
    await svc.embed_one("a")
    assert any(t.get_name() == "ww-embed-batcher" for t in asyncio.all_tasks())
    await svc.aclose()
    await svc.aclose()  # idempotent
    assert not any(t.get_name() == "ww-embed-batcher" for t in asyncio.all_tasks())
    with pytest.raises(EmbeddingError, match="closed"):
        await svc.embed_one("b")
    with pytest.raises(EmbeddingError, match="closed"):
        svc.embed_sync(["b"])


def test_service_survives_changing_event_loops(
    counting: CountingEmbedder, caplog: pytest.LogCaptureFixture
) -> None:
    svc = EmbeddingService(counting, cache_size=10, batch_size=32)
    with caplog.at_level(logging.ERROR, logger="asyncio"):
        first = asyncio.run(svc.embed_one("first loop"))
        second = asyncio.run(svc.embed_one("second loop"))
        again = asyncio.run(svc.embed_one("first loop"))
        asyncio.run(svc.aclose())
        gc.collect()
    np.testing.assert_array_equal(first, counting.vector_for("first loop"))
    np.testing.assert_array_equal(second, counting.vector_for("second loop"))
    np.testing.assert_array_equal(again, first)
    assert "destroyed but it is pending" not in caplog.text
    assert "never retrieved" not in caplog.text


# --- with the real model -------------------------------------------------------------


async def test_real_model_concurrent_queries(embedder: OnnxEmbedder) -> None:
    wrapper = CountingWrapper(embedder)
    svc = EmbeddingService(wrapper, cache_size=100, batch_size=32, max_wait_ms=5)
    try:
        texts = [f"Memory {i}: the user mentioned item number {i} at breakfast." for i in range(20)]
        results = await asyncio.gather(*(svc.embed_one(t) for t in texts))
        assert len(wrapper.calls) < 20
        expected = embedder.embed(texts)
        np.testing.assert_allclose(np.vstack(results), expected, atol=1e-5)
    finally:
        await svc.aclose()


async def test_real_model_embed_sync_agrees_with_embed_one(embedder: OnnxEmbedder) -> None:
    svc = EmbeddingService(embedder, cache_size=0, batch_size=32)
    try:
        text = "Where did I park the car yesterday?"
        from_sync = svc.embed_sync([text])
        from_async = await svc.embed_one(text)
        assert from_sync.shape == (1, 384)
        np.testing.assert_allclose(from_sync[0], from_async, atol=1e-5)
        np.testing.assert_allclose(np.linalg.norm(from_async), 1.0, atol=1e-5)
    finally:
        await svc.aclose()


async def test_aclose_fails_requests_still_waiting() -> None:
    svc = EmbeddingService(CountingEmbedder(delay_s=0.2), cache_size=10, batch_size=32)
    pending = asyncio.create_task(svc.embed_one("in flight"))
    await asyncio.sleep(0.05)  # the batcher is now waiting on the model
    await svc.aclose()
    with pytest.raises(EmbeddingError, match="closed"):
        await pending


async def test_real_model_ingest_batch_matches_a_lone_query(embedder: OnnxEmbedder) -> None:
    # What ingest stores (embed_many over a batch of varied lengths) is what a later query
    # for the same text gets (embed_one, alone): the model's vectors ignore batch mates.
    svc = EmbeddingService(embedder, cache_size=0, batch_size=32)
    try:
        text = "I adopted a border collie puppy named Biscuit in March."
        mates = [f"note {i}: " + "the garden shed needs paint " * (i % 7) for i in range(40)]
        ingested = await svc.embed_many([*mates[:25], text, *mates[25:]])
        alone = await svc.embed_one(text)
        assert float(ingested[25] @ alone) >= 0.9999
    finally:
        await svc.aclose()
