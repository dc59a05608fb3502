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

import os
from collections.abc import Callable, Coroutine
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

from ww.api.auth import METRICS_PATH
from ww.control.circuits import CIRCUIT_NAMES, Circuits, CircuitState
from ww.embedding.service import EmbeddingStats
from ww.storage import guarded

__all__ = [
    "CIRCUIT_STATE",
    "EMBEDDING",
    "METRICS_PATH",
    "MULTIPROC_ENV",
    "RATE_LIMITED",
    "REQUESTS",
    "REQUEST_SECONDS",
    "STORE_ERRORS",
    "STORE_SECONDS",
    "forget_dead_workers",
    "gauge_refresher",
    "metrics_endpoint",
    "observe_store_call",
    "refresh_circuits",
]

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


def observe_store_call(
    circuit: str, operation: str, seconds: float, error: BaseException | None
) -> None:
    STORE_SECONDS.labels(circuit, operation).observe(seconds)
    if error is not None:
        STORE_ERRORS.labels(circuit, operation, type(error).__name__).inc()


if observe_store_call not in guarded.OBSERVERS:
    guarded.OBSERVERS.append(observe_store_call)


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
    refresh: Callable[[], None],
) -> Callable[[Request], Coroutine[Any, Any, Response]]:
    """The ``/metrics`` route: this worker's registry, or every worker's in multi-process
    mode."""

    async def metrics(_: Request) -> Response:
        # On the event loop: the gauges read the circuit breakers, which only the loop may
        # touch; the exposition (files, in multi-process mode) goes to a thread.
        refresh()
        data = await anyio.to_thread.run_sync(_exposition)
        return Response(data, media_type=CONTENT_TYPE_LATEST)

    return metrics
