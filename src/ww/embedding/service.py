"""The async front the server embeds through: LRU cache, micro-batching, one inference thread.

Inference runs on a single dedicated thread because ONNX Runtime already spreads one run over
all cores; parallel runs would only contend. Concurrent ``embed_one`` calls that are queued
when the inference thread becomes free share one ``Embedder.embed`` call; ``max_wait_ms``
(default 0) optionally holds a lone request back to wait for company.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from ww.embedding.base import Embedder, EmbeddingError, Windowed

__all__ = ["BATCH_OBSERVERS", "BatchObserver", "EmbeddingService", "EmbeddingStats"]

_Vector = npt.NDArray[np.float32]
# A queued text, the future its caller awaits, and when it was queued (perf_counter).
_Request = tuple[str, "asyncio.Future[_Vector]", float]

# Told of every model run as it starts, on the inference thread: the number of texts in the
# batch, and how long each queued ``embed_one`` request it serves waited (seconds; none for
# ``embed_many`` and ``embed_sync``, which do not queue). ``ww.api.metrics`` registers
# itself; empty, a batch costs nothing more.
BatchObserver = Callable[[int, Sequence[float]], None]
# Below this many characters in all, texts are split into windows on the event loop: the
# tokenizer takes well under a millisecond for them, less than a thread hop.
_INLINE_WINDOW_CHARS = 4096
BATCH_OBSERVERS: list[BatchObserver] = []


@dataclass(frozen=True, slots=True)
class EmbeddingStats:
    """Counters since the service started.

    ``cache_hits + cache_misses`` counts distinct texts looked up per request;
    ``items_embedded`` counts texts sent to the model, which is lower than the misses when
    concurrent requests asked for the same text.
    """

    cache_hits: int
    cache_misses: int
    batches: int
    items_embedded: int
    cache_entries: int


class _LRUCache:
    """Exact-text to vector map that forgets the least recently used entry when full."""

    def __init__(self, capacity: int) -> None:
        self._capacity = capacity
        self._data: OrderedDict[str, _Vector] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: str) -> _Vector | None:
        if self._capacity == 0:
            return None
        with self._lock:
            value = self._data.get(key)
            if value is not None:
                self._data.move_to_end(key)
            return value

    def put(self, key: str, value: _Vector) -> None:
        if self._capacity == 0:
            return
        with self._lock:
            self._data[key] = value
            self._data.move_to_end(key)
            while len(self._data) > self._capacity:
                self._data.popitem(last=False)

    def __len__(self) -> int:
        with self._lock:
            return len(self._data)


@dataclass(frozen=True, slots=True)
class _Batcher:
    loop: asyncio.AbstractEventLoop
    queue: asyncio.Queue[_Request]
    task: asyncio.Task[None]


class EmbeddingService:
    """Caches and batches calls to an :class:`~ww.embedding.base.Embedder`.

    Returned arrays are fresh copies, so callers may modify them. The service can be used
    from one event loop at a time; moving to a new loop (each test gets its own) restarts
    the batcher there.
    """

    def __init__(
        self,
        embedder: Embedder,
        *,
        cache_size: int,
        batch_size: int,
        max_wait_ms: float = 0.0,
    ) -> None:
        if cache_size < 0:
            raise ValueError(f"cache_size must be >= 0, got {cache_size}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if max_wait_ms < 0:
            raise ValueError(f"max_wait_ms must be >= 0, got {max_wait_ms}")
        self._embedder = embedder
        self._windowed = embedder if isinstance(embedder, Windowed) else None
        self._dimension = embedder.dimension
        self._cache = _LRUCache(cache_size)
        self._batch_size = batch_size
        self._max_wait_s = max_wait_ms / 1000.0
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ww-embed")
        self._counter_lock = threading.Lock()
        self._hits = self._misses = self._batches = self._items = 0
        self._batcher: _Batcher | None = None
        self._closed = False

    @property
    def model_id(self) -> str:
        return self._embedder.model_id

    @property
    def dimension(self) -> int:
        return self._dimension

    @property
    def stats(self) -> EmbeddingStats:
        with self._counter_lock:
            hits, misses, batches, items = self._hits, self._misses, self._batches, self._items
        return EmbeddingStats(hits, misses, batches, items, len(self._cache))

    def windows(self, text: str) -> list[str]:
        """``text``'s overlapping windows, each seen whole by the model, in order (the
        first is what the text's own vector sees); ``[text]`` for an embedder without
        windows (:class:`~ww.embedding.base.Windowed`), which sees whole texts."""
        if self._windowed is None:
            return [text]
        return self._windowed.windows(text)

    async def windows_many(self, texts: Sequence[str]) -> list[list[str]]:
        """:meth:`windows` of each text; long texts are tokenised off the event loop."""
        wanted = _text_list(texts)
        if self._windowed is None or sum(map(len, wanted)) < _INLINE_WINDOW_CHARS:
            return [self.windows(t) for t in wanted]
        return await asyncio.to_thread(lambda: [self.windows(t) for t in wanted])

    async def embed_one(self, text: str) -> _Vector:
        """Embed one text, sharing a model call with other requests arriving meanwhile."""
        self._check_open()
        if not isinstance(text, str):
            raise TypeError(f"text must be str, got {type(text).__name__}")
        found, _ = self._lookup([text])
        if text in found:
            return found[text].copy()
        batcher = self._batcher_for_running_loop()
        future: asyncio.Future[_Vector] = batcher.loop.create_future()
        batcher.queue.put_nowait((text, future, time.perf_counter()))
        return (await future).copy()

    async def embed_many(self, texts: Sequence[str], *, cache: bool = True) -> _Vector:
        """Embed texts in order; uncached ones go to the model in chunks of ``batch_size``,
        shortest first, so each chunk holds texts of similar length. ``cache=False``
        neither reads nor fills the cache (a long memory's windows, seldom asked for
        again, would push out what is)."""
        self._check_open()
        wanted = _text_list(texts)
        if cache:
            found, missing = self._lookup(wanted)
        else:
            found, missing = {}, list(dict.fromkeys(wanted))
        missing = _by_length(missing)
        loop = asyncio.get_running_loop()
        infer = self._infer if cache else self._infer_uncached
        for start in range(0, len(missing), self._batch_size):
            chunk = missing[start : start + self._batch_size]
            # One chunk at a time, so queued embed_one batches can run in between.
            rows = await loop.run_in_executor(self._executor, infer, chunk)
            found.update(zip(chunk, rows, strict=True))
        return self._assemble(wanted, found)

    def embed_sync(self, texts: Sequence[str]) -> _Vector:
        """Blocking :meth:`embed_many` for code without an event loop (CLI, benchmarks).

        It blocks the calling thread, so never call it from a coroutine.
        """
        self._check_open()
        wanted = _text_list(texts)
        found, missing = self._lookup(wanted)
        missing = _by_length(missing)
        for start in range(0, len(missing), self._batch_size):
            chunk = missing[start : start + self._batch_size]
            rows = self._executor.submit(self._infer, chunk).result()
            found.update(zip(chunk, rows, strict=True))
        return self._assemble(wanted, found)

    async def aclose(self) -> None:
        """Stop the batcher and the inference thread; later calls raise EmbeddingError."""
        if self._closed:
            return
        self._closed = True
        batcher, self._batcher = self._batcher, None
        if batcher is not None and batcher.loop is asyncio.get_running_loop():
            batcher.task.cancel()
            await asyncio.wait([batcher.task])
        elif batcher is not None:
            _cancel_from_outside(batcher)
        # Not waiting: a model call already running finishes on its own and nobody needs it.
        self._executor.shutdown(wait=False, cancel_futures=True)

    def _check_open(self) -> None:
        if self._closed:
            raise EmbeddingError("the embedding service is closed")

    def _lookup(self, texts: list[str]) -> tuple[dict[str, _Vector], list[str]]:
        found: dict[str, _Vector] = {}
        missing: list[str] = []
        for text in dict.fromkeys(texts):  # dict keeps first-seen order and drops repeats
            vector = self._cache.get(text)
            if vector is None:
                missing.append(text)
            else:
                found[text] = vector
        with self._counter_lock:
            self._hits += len(found)
            self._misses += len(missing)
        return found, missing

    def _infer_uncached(self, texts: list[str]) -> list[_Vector]:
        return self._infer(texts, (), cache=False)

    def _infer(
        self, texts: list[str], queued_at: Sequence[float] = (), *, cache: bool = True
    ) -> list[_Vector]:
        """Run the model on distinct texts and cache the rows; called on the worker thread.
        ``queued_at``: when the queued requests this batch serves were queued."""
        self._tell(len(texts), queued_at)
        matrix = np.asarray(self._embedder.embed(texts), dtype=np.float32)
        if matrix.shape != (len(texts), self._dimension):
            raise EmbeddingError(
                f"embedder {self.model_id} returned shape {matrix.shape} for {len(texts)} texts; "
                f"expected ({len(texts)}, {self._dimension})"
            )
        rows: list[_Vector] = []
        for text, row in zip(texts, matrix, strict=True):
            # Cached rows are shared by every later hit, so they are frozen copies.
            frozen = row.copy()
            frozen.setflags(write=False)
            if cache:
                self._cache.put(text, frozen)
            rows.append(frozen)
        with self._counter_lock:
            self._batches += 1
            self._items += len(texts)
        return rows

    @staticmethod
    def _tell(size: int, queued_at: Sequence[float]) -> None:
        if BATCH_OBSERVERS:
            now = time.perf_counter()
            waits = [now - at for at in queued_at]
            for observer in BATCH_OBSERVERS:
                observer(size, waits)

    def _assemble(self, texts: list[str], vectors: dict[str, _Vector]) -> _Vector:
        if not texts:
            return np.empty((0, self._dimension), dtype=np.float32)
        return np.stack([vectors[t] for t in texts]).astype(np.float32, copy=False)

    def _batcher_for_running_loop(self) -> _Batcher:
        loop = asyncio.get_running_loop()
        current = self._batcher
        if current is not None and current.loop is loop and not current.task.done():
            return current
        if current is not None and current.loop is not loop:
            _cancel_from_outside(current)
        queue: asyncio.Queue[_Request] = asyncio.Queue()
        task = loop.create_task(self._run_batcher(queue), name="ww-embed-batcher")
        self._batcher = _Batcher(loop, queue, task)
        return self._batcher

    async def _run_batcher(self, queue: asyncio.Queue[_Request]) -> None:
        taken: list[_Request] = []
        carry: _Request | None = None
        try:
            while True:
                first = carry if carry is not None else await queue.get()
                carry = None
                taken.append(first)
                if self._max_wait_s > 0 and queue.qsize() < self._batch_size - 1:
                    await asyncio.sleep(self._max_wait_s)
                else:
                    # One turn of the loop lets requests scheduled alongside this one join
                    # it; under load, requests that arrive while the model runs form the
                    # next batch, so a lone query never waits for company.
                    await asyncio.sleep(0)
                groups: dict[str, list[asyncio.Future[_Vector]]] = {first[0]: [first[1]]}
                while not queue.empty():
                    request = queue.get_nowait()
                    if request[0] not in groups and len(groups) >= self._batch_size:
                        carry = request  # starts the next batch
                        break
                    taken.append(request)
                    groups.setdefault(request[0], []).append(request[1])
                await self._serve(groups, [r[2] for r in taken])
                taken.clear()
        finally:
            # Stopped by aclose() or by the loop shutting down: fail whoever still waits, so
            # no caller hangs. (A loop shutdown has already cancelled its waiting callers.)
            leftovers = [*taken, *([carry] if carry is not None else [])]
            while not queue.empty():
                leftovers.append(queue.get_nowait())
            for _, future, _ in leftovers:
                if not future.done():
                    future.set_exception(EmbeddingError("the embedding service was closed"))

    async def _serve(
        self, groups: dict[str, list[asyncio.Future[_Vector]]], queued_at: list[float]
    ) -> None:
        # A concurrent embed_many may have cached some texts since they were queued.
        ready: dict[str, _Vector] = {}
        missing: list[str] = []
        for text in groups:
            vector = self._cache.get(text)
            if vector is None:
                missing.append(text)
            else:
                ready[text] = vector
        if missing:
            loop = asyncio.get_running_loop()
            try:
                rows = await loop.run_in_executor(self._executor, self._infer, missing, queued_at)
            except Exception as exc:
                for text in missing:
                    for future in groups[text]:
                        if not future.done():
                            future.set_exception(exc)
            else:
                ready.update(zip(missing, rows, strict=True))
        for text, vector in ready.items():
            for future in groups[text]:
                if not future.done():  # the caller may have been cancelled
                    future.set_result(vector)


def _by_length(texts: list[str]) -> list[str]:
    # Texts of similar length share a model call, so little of it is spent on padding; the
    # characters stand in for word pieces, which only the embedder counts.
    return sorted(texts, key=len)


def _text_list(texts: Sequence[str]) -> list[str]:
    if isinstance(texts, str):
        raise TypeError("expected a sequence of strings, got one str; wrap it in a list")
    out = list(texts)
    for text in out:
        if not isinstance(text, str):
            raise TypeError(f"texts must be str, got {type(text).__name__}")
    return out


def _cancel_from_outside(batcher: _Batcher) -> None:
    # The batcher's loop may still be running in another thread, so the cancel is
    # scheduled there; a closed loop has already cancelled its tasks.
    if not batcher.task.done() and not batcher.loop.is_closed():
        with contextlib.suppress(RuntimeError):  # closed in the meantime
            batcher.loop.call_soon_threadsafe(batcher.task.cancel)
