"""Prometheus metrics, served at ``/metrics`` (``docs/operations.md``, Monitoring).

Labels are bounded: the route *template* (``/api/v1/episodes/{episode_id}``, never an id),
the method, the status, a circuit's name, a store method's name, a rate-limit group. No
session id, key id or memory content is ever a label value: sessions are unbounded.

With ``WW_API_WORKERS`` > 1 the supervisor (``ww.api.server``) points
``PROMETHEUS_MULTIPROC_DIR`` at an empty directory before the workers start; each worker's
``prometheus_client`` then writes its values there and ``/metrics``, whichever worker
answers, adds up every worker's (``MultiProcessCollector``).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Coroutine, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

import anyio.to_thread
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from starlette.requests import Request
from starlette.responses import Response

from ww import tracing
from ww.api.auth import METRICS_PATH
from ww.control.circuits import CIRCUIT_NAMES, Circuits, CircuitState
from ww.embedding import service as embedding_service
from ww.embedding.service import EmbeddingStats
from ww.models import MemoryType
from ww.storage import guarded
from ww.storage.ports import MemoryCount, StoreUnavailableError

__all__ = [
    "CIRCUIT_STATE",
    "EMBEDDING",
    "EMBEDDING_BATCH_SIZE",
    "EMBEDDING_QUEUE_WAIT",
    "MEMORIES",
    "METRICS_PATH",
    "MULTIPROC_ENV",
    "PENDING_VECTORS",
    "RATE_LIMITED",
    "RECALL_STAGE_SECONDS",
    "REQUESTS",
    "REQUEST_SECONDS",
    "STORE_ERRORS",
    "STORE_SECONDS",
    "StoreGauges",
    "forget_dead_workers",
    "gauge_refresher",
    "metrics_endpoint",
    "observe_batch",
    "observe_recall_stage",
    "observe_store_call",
    "refresh_circuits",
]

log = logging.getLogger(__name__)

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

# Recall of a warm model takes milliseconds; a cold or overloaded one seconds.
_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

REQUESTS = Counter("ww_http_requests", "HTTP requests answered", ["method", "route", "status"])
REQUEST_SECONDS = Histogram(
    "ww_http_request_duration_seconds",
    "Time from a request's arrival to its last response byte",
    ["method", "route", "status"],
    buckets=_BUCKETS,
)
STORE_SECONDS = Histogram(
    "ww_store_operation_duration_seconds",
    "Calls to the stores, the vector indexes and the embedder, by circuit and method",
    ["circuit", "operation"],
    buckets=_BUCKETS,
)
STORE_ERRORS = Counter(
    "ww_store_operation_errors",
    "Store, index and embedder calls that raised, by exception class",
    ["circuit", "operation", "error"],
)
# 1 for the state each circuit is in, 0 for the others. With several workers each worker
# has its own breakers: the value is the highest over the live workers (any one open shows).
CIRCUIT_STATE = Gauge(
    "ww_circuit_state",
    "1 for the state a circuit is in (closed, open, half-open)",
    ["circuit", "state"],
    multiprocess_mode="livemax",
)
# Counts since each worker started, from the embedding service's own counters; gauges, so
# that multi-process mode adds the live workers' up. Mean batch size: items / batches.
EMBEDDING = {
    field: Gauge(
        f"ww_embedding_{field}",
        help_text,
        multiprocess_mode="livesum",
    )
    for field, help_text in (
        ("cache_hits", "Embeddings answered from the cache (since the worker started)"),
        ("cache_misses", "Embeddings the model had to compute (since the worker started)"),
        ("batches", "Batches run through the model (since the worker started)"),
        ("items_embedded", "Texts embedded by the model (since the worker started)"),
        ("cache_entries", "Embeddings held in the cache now"),
    )
}
RATE_LIMITED = Counter(
    "ww_rate_limit_rejections", "Requests refused with 429 by the rate limiter", ["group"]
)
# A recall's stages take from a tenth of a millisecond (ranking) to seconds (a cold model).
_STAGE_BUCKETS = (0.0001, 0.00025, 0.0005, *_BUCKETS[:-1])
RECALL_STAGE_SECONDS = Histogram(
    "ww_recall_stage_duration_seconds",
    "Time each stage of an episode recall took (embed, vector_search, keyword_search, "
    "candidates, parts, fusion, neighbours, rank, fetch, learn)",
    ["stage"],
    buckets=_STAGE_BUCKETS,
)
EMBEDDING_BATCH_SIZE = Histogram(
    "ww_embedding_batch_size",
    "Texts in each model run of the embedding service",
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024),
)
EMBEDDING_QUEUE_WAIT = Histogram(
    "ww_embedding_queue_wait_seconds",
    "Time a text queued for embedding waited until its batch went to the model",
    buckets=_STAGE_BUCKETS,
)
# Counts of the whole store, the same whichever worker reads them: with several workers the
# value of the worker that read it last is the one shown (a sum would count it once per
# worker; a max would hide a shrinking backlog).
MEMORIES = Gauge(
    "ww_memories",
    "Memories stored in every session, by type (episode, entity, skill)",
    ["type"],
    multiprocess_mode="livemostrecent",
)
PENDING_VECTORS = Gauge(
    "ww_pending_vectors",
    "Memories acknowledged whose vectors are not in the vector index yet, by type",
    ["type"],
    multiprocess_mode="livemostrecent",
)


def observe_store_call(
    circuit: str, operation: str, seconds: float, error: BaseException | None
) -> None:
    STORE_SECONDS.labels(circuit, operation).observe(seconds)
    if error is not None:
        STORE_ERRORS.labels(circuit, operation, type(error).__name__).inc()


def observe_recall_stage(stage: str, seconds: float) -> None:
    RECALL_STAGE_SECONDS.labels(stage).observe(seconds)


def observe_batch(size: int, waits: Sequence[float]) -> None:
    EMBEDDING_BATCH_SIZE.observe(size)
    for wait in waits:
        EMBEDDING_QUEUE_WAIT.observe(wait)


for _observers, _observer in (
    (guarded.OBSERVERS, observe_store_call),
    (tracing.STAGE_OBSERVERS, observe_recall_stage),
    (embedding_service.BATCH_OBSERVERS, observe_batch),
):
    if _observer not in _observers:
        _observers.append(_observer)  # type: ignore[arg-type]


class _HasStats(Protocol):
    @property
    def stats(self) -> EmbeddingStats: ...


def gauge_refresher(circuits: Circuits, embedder: _HasStats) -> Callable[[], None]:
    """What sets this worker's gauges from the state they show: called after every request
    and at each scrape, so every worker's values stay current in multi-process mode."""

    def refresh() -> None:
        refresh_circuits(circuits)
        stats = embedder.stats
        for field, gauge in EMBEDDING.items():
            gauge.set(getattr(stats, field))

    return refresh


class _CountsMemories(Protocol):
    async def memory_counts(self) -> dict[MemoryType, MemoryCount]: ...


class StoreGauges:
    """Memories per type and the pending-vector backlog, counted by the record store at a
    scrape, at most once per ``ttl`` of ``clock`` (the engine's): several scrapers, or one
    per worker, do not each count a large store. A store that cannot answer leaves the
    gauges at their last values (its circuit's gauge says why)."""

    def __init__(
        self,
        records: _CountsMemories,
        clock: Callable[[], datetime],
        ttl: timedelta = timedelta(seconds=10),
    ) -> None:
        self.records, self.clock, self.ttl = records, clock, ttl
        self._due: datetime | None = None

    async def refresh(self) -> None:
        now = self.clock()
        if self._due is not None and now < self._due:
            return
        self._due = now + self.ttl  # before the await: a concurrent scrape counts nothing
        try:
            counts = await self.records.memory_counts()
        except Exception as exc:  # the scrape answers, with every other metric, regardless
            # A store's own unavailability says which and why; anything else only its class
            # (a driver's message may name an address).
            why = str(exc) if isinstance(exc, StoreUnavailableError) else type(exc).__name__
            log.warning("memory counts not refreshed: %s", why)
            return
        for kind, count in counts.items():
            MEMORIES.labels(kind.value).set(count.stored)
            PENDING_VECTORS.labels(kind.value).set(count.pending)


def refresh_circuits(circuits: Circuits) -> None:
    for breaker in circuits:
        state = breaker.state
        for each in CircuitState:
            CIRCUIT_STATE.labels(breaker.name, each.value).set(1 if each is state else 0)


def _all_circuits_closed() -> None:
    for name in CIRCUIT_NAMES:
        for each in CircuitState:
            CIRCUIT_STATE.labels(name, each.value).set(1 if each is CircuitState.CLOSED else 0)


_all_circuits_closed()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: it exists
        return True
    return True


def forget_dead_workers(path: str) -> None:
    """Drop the live-gauge files of workers that have died (the supervisor restarts a worker
    under a new pid), so a dead worker's open circuit does not show for ever. Counters and
    histograms keep its counts, as a restart should."""
    for file in Path(path).glob("gauge_live*_*.db"):
        pid = file.stem.rsplit("_", 1)[-1]
        if pid.isdigit() and not _alive(int(pid)):
            multiprocess.mark_process_dead(int(pid), path)  # type: ignore[no-untyped-call]


def _exposition() -> bytes:
    path = os.environ.get(MULTIPROC_ENV)
    if not path:
        return generate_latest(REGISTRY)
    forget_dead_workers(path)
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    return generate_latest(registry)


def metrics_endpoint(
    refresh: Callable[[], None], stores: StoreGauges
) -> Callable[[Request], Coroutine[Any, Any, Response]]:
    """The ``/metrics`` route: this worker's registry, or every worker's in multi-process
    mode."""

    async def metrics(_: Request) -> Response:
        # On the event loop: the gauges read the circuit breakers, which only the loop may
        # touch; the exposition (files, in multi-process mode) goes to a thread.
        refresh()
        await stores.refresh()
        data = await anyio.to_thread.run_sync(_exposition)
        return Response(data, media_type=CONTENT_TYPE_LATEST)

    return metrics
