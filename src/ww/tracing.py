"""OpenTelemetry tracing (``WW_OTEL_ENABLED``, ``WW_OTEL_ENDPOINT``, ``WW_OTEL_PROTOCOL``,
and the runtime flag ``telemetry``; docs/operations.md, Tracing).

Spans are made only while tracing is installed *and* the flag is on, read at each use: with
either off, ``span`` is one function call and a boolean test, and nothing of the SDK runs.
Spans carry the session, counts and timings; never memory content, a query or a key.

Installed once per process (each worker of ``WW_API_WORKERS`` exports its own spans, with
its pid as ``service.instance.id``); the SDK and exporters are the ``otel`` extra, imported
only when tracing is enabled.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from ww import __version__
from ww.config import ConfigError
from ww.storage import guarded

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SpanExporter
    from opentelemetry.trace import Span, Tracer

    from ww.config import Settings

__all__ = [
    "SERVICE_NAME",
    "STAGE_OBSERVERS",
    "StageObserver",
    "active_tracer",
    "install",
    "observe_store_call",
    "set_attributes",
    "span",
    "stage",
    "uninstall",
]

SERVICE_NAME = "world-weaver"

# Told of every stage of a recall once it ends: (the stage's name, seconds). The metrics
# register themselves (``ww.api.metrics``): one timer serves the stage's span and its
# histogram.
StageObserver = Callable[[str, float], None]
STAGE_OBSERVERS: list[StageObserver] = []

_tracer: Tracer | None = None
_provider: TracerProvider | None = None
_flag: Callable[[], bool] = lambda: False  # noqa: E731 - replaced by install


def _exporter(settings: Settings) -> SpanExporter:
    endpoint = settings.otel_endpoint
    if settings.otel_protocol == "http":
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
            OTLPSpanExporter as HttpExporter,
        )

        return HttpExporter(endpoint=endpoint.rstrip("/") + "/v1/traces")
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

    return OTLPSpanExporter(endpoint=endpoint, insecure=endpoint.startswith("http://"))


def install(
    settings: Settings, flag: Callable[[], bool], exporter: SpanExporter | None = None
) -> bool:
    """Start exporting spans if ``WW_OTEL_ENABLED``; ``flag`` (the ``telemetry`` flag) is
    asked at each span. ``exporter`` replaces the OTLP one (tests: the in-memory exporter).
    Whether tracing is installed."""
    global _tracer, _provider, _flag
    if not settings.otel_enabled:
        return False
    try:
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
    except ImportError:
        raise ConfigError(
            "WW_OTEL_ENABLED=true needs the otel extra (opentelemetry-sdk not installed): "
            "pip install 'world-weaver[otel]'"
        ) from None

    resource = Resource.create(
        {
            "service.name": SERVICE_NAME,
            "service.version": __version__,
            "service.instance.id": str(os.getpid()),
            "deployment.environment": settings.environment.value,
        }
    )
    provider = TracerProvider(resource=resource)
    if exporter is None:
        provider.add_span_processor(BatchSpanProcessor(_exporter(settings)))
    else:
        provider.add_span_processor(SimpleSpanProcessor(exporter))
    _provider, _flag = provider, flag
    _tracer = provider.get_tracer("ww", __version__)
    if observe_store_call not in guarded.OBSERVERS:
        guarded.OBSERVERS.append(observe_store_call)
    return True


def uninstall() -> None:
    """Flush and stop the exporter (at shutdown)."""
    global _tracer, _provider
    provider, _provider, _tracer = _provider, None, None
    if observe_store_call in guarded.OBSERVERS:
        guarded.OBSERVERS.remove(observe_store_call)
    if provider is not None:
        provider.shutdown()


def active_tracer() -> Tracer | None:
    """The tracer while tracing is installed and the flag is on, else None."""
    tracer = _tracer
    return tracer if tracer is not None and _flag() else None


@contextlib.contextmanager
def span(name: str, **attributes: Any) -> Iterator[Span | None]:
    """A child of the current span, or nothing (yields None) while tracing is off;
    ``attributes`` are strings, numbers or booleans (None ones are left out)."""
    tracer = active_tracer()
    if tracer is None:
        yield None
        return
    attrs = {k: v for k, v in attributes.items() if v is not None}
    # Not the SDK's exception events: an exception's message may quote memory content (a
    # validation error's input) or an address; the span keeps only its class.
    with tracer.start_as_current_span(
        name, attributes=attrs, record_exception=False, set_status_on_exception=False
    ) as current:
        try:
            yield current
        except BaseException as exc:
            _mark_error(current, exc)
            raise


@contextlib.contextmanager
def stage(name: str, **attributes: Any) -> Iterator[Span | None]:
    """One stage of a recall (``embed``, ``vector_search``, ``fusion``...): the span
    ``ww.<name>`` while tracing is on, and its duration, failed or not, told to
    ``STAGE_OBSERVERS``. With tracing off it costs two clock reads and the flag's test."""
    start = time.perf_counter()
    try:
        if active_tracer() is None:  # the usual case: no span's context manager at all
            yield None
        else:
            with span("ww." + name, **attributes) as current:
                yield current
    finally:
        seconds = time.perf_counter() - start
        for observer in STAGE_OBSERVERS:
            observer(name, seconds)


def set_attributes(current: Span | None, **attributes: Any) -> None:
    if current is not None:
        current.set_attributes({k: v for k, v in attributes.items() if v is not None})


def observe_store_call(
    circuit: str, operation: str, seconds: float, error: BaseException | None
) -> None:
    """A span for one guarded store, index or embedder call (``ww.storage.guarded``), made
    when it ends with the time it started."""
    tracer = active_tracer()
    if tracer is None:
        return
    end = time.time_ns()
    current = tracer.start_span(
        f"{circuit}.{operation}",
        start_time=end - int(seconds * 1e9),
        attributes={"ww.circuit": circuit, "ww.operation": operation},
    )
    if error is not None:
        _mark_error(current, error)
    current.end(end_time=end)


def _mark_error(current: Span, error: BaseException) -> None:
    """The error's class, never its message."""
    from opentelemetry.trace import Status, StatusCode

    current.set_status(Status(StatusCode.ERROR, type(error).__name__))
    current.set_attribute("error.type", type(error).__name__)
