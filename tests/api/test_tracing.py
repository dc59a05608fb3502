"""OpenTelemetry spans, caught with the SDK's in-memory exporter: the span tree of a
recall, the resource attributes, the ``telemetry`` flag as a switch, and no memory content
or query in any span."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from tests.api.helpers import running_client, scratch_dir
from tests.conftest import ManualClock
from ww import __version__, tracing
from ww.config import ConfigError, Settings
from ww.embedding import OnnxEmbedder
from ww.storage import guarded

SESSION = "tracing-session-1"
CONTENT = "Pl4ntedContent the otters slide down the muddy bank at dusk"
QUERY = "Pl4ntedQuery where do otters play"
H = {"X-Session-ID": SESSION}


@pytest.fixture
def traced(onnx_embedder: OnnxEmbedder) -> Iterator[tuple[TestClient, InMemorySpanExporter]]:
    exporter = InMemorySpanExporter()
    with (
        scratch_dir() as tmp,
        running_client(tmp / "data", onnx_embedder, ManualClock(), otel_enabled=True) as client,
    ):
        # The app installed the OTLP exporter; the test's replaces it, same flag.
        engine = client.app.state.engine  # type: ignore[attr-defined]
        tracing.uninstall()
        tracing.install(
            client.app.state.settings,  # type: ignore[attr-defined]
            lambda: bool(engine.flags.telemetry),
            exporter,
        )
        yield client, exporter
    assert tracing.active_tracer() is None  # the app's shutdown uninstalled it


def _set_telemetry(client: TestClient, on: bool) -> None:
    r = client.patch("/api/v1/control/flags/telemetry", json={"enabled": on})
    assert r.status_code == 200, r.text


def _children(spans: list[ReadableSpan], parent: ReadableSpan) -> list[ReadableSpan]:
    assert parent.context is not None
    return [s for s in spans if s.parent is not None and s.parent.span_id == parent.context.span_id]


def test_a_recall_makes_the_expected_span_tree(
    traced: tuple[TestClient, InMemorySpanExporter],
) -> None:
    client, exporter = traced
    assert client.post("/api/v1/episodes", json={"content": CONTENT}, headers=H).status_code == 201
    assert exporter.get_finished_spans() == ()  # the flag is off by default
    _set_telemetry(client, True)
    exporter.clear()
    assert client.post("/api/v1/episodes", json={"content": CONTENT}, headers=H).status_code == 201
    r = client.post("/api/v1/episodes/recall", json={"query": QUERY}, headers=H)
    assert r.status_code == 200 and r.json()["hits"]
    spans = list(exporter.get_finished_spans())

    roots = [s for s in spans if s.parent is None]
    assert [s.name for s in roots] == ["POST /api/v1/episodes", "POST /api/v1/episodes/recall"]
    request = roots[1]
    assert request.attributes is not None
    assert request.attributes["http.route"] == "/api/v1/episodes/recall"
    assert request.attributes["http.response.status_code"] == 200
    assert request.attributes["ww.session"] == SESSION
    assert request.attributes["ww.request_id"] == r.headers["X-Request-ID"]

    [recall] = _children(spans, request)
    assert recall.name == "ww.recall.episodes"
    assert recall.attributes is not None
    assert (recall.attributes["ww.session"], recall.attributes["ww.hits"]) == (SESSION, 2)
    # One span per stage (the timer the stage histogram reads too), each holding the store,
    # index and embedder calls it made.
    stages = {s.name: s for s in _children(spans, recall)}
    assert set(stages) == {
        "ww.embed",
        "ww.keyword_search",
        "ww.vector_search",
        "ww.candidates",
        "ww.fusion",
        "ww.neighbours",
        "ww.rank",
        "ww.fetch",
        "ww.learn",
    }

    def calls(stage: str) -> set[str]:
        return {s.name for s in _children(spans, stages[stage])}

    assert calls("ww.embed") == {"embedder.embed_one"}
    assert calls("ww.keyword_search") == {"database.keyword_search"}
    assert calls("ww.vector_search") == {"vectors.search"}
    assert "database.candidate_rows" in calls("ww.candidates")
    assert calls("ww.neighbours") == {"database.neighbours"}
    assert calls("ww.fetch") == {"database.get_episodes"}
    assert calls("ww.rank") == set()  # arithmetic only
    fusion = stages["ww.fusion"]
    assert fusion.attributes is not None and fusion.attributes["ww.candidates"] == 2
    assert calls("ww.learn"), "the learning writes are store calls under ww.learn"

    resource = request.resource.attributes
    assert resource["service.name"] == "world-weaver"
    assert resource["service.version"] == __version__
    assert resource["service.instance.id"] == str(os.getpid())

    # No memory content, no query, in any span's name or attribute.
    for s in spans:
        text = s.name + repr(dict(s.attributes or {})) + repr(s.events)
        assert "Pl4nted" not in text and "otters" not in text, s.name

    _set_telemetry(client, False)
    exporter.clear()
    client.post("/api/v1/episodes/recall", json={"query": QUERY}, headers=H)
    # The PATCH that turned it off was traced until it ended; nothing after.
    assert exporter.get_finished_spans() == ()


def test_off_by_default_nothing_is_installed(onnx_embedder: OnnxEmbedder) -> None:
    with (
        scratch_dir() as tmp,
        running_client(tmp / "data", onnx_embedder, ManualClock()) as client,
    ):
        _set_telemetry(client, True)
        assert tracing.active_tracer() is None
        assert tracing.observe_store_call not in guarded.OBSERVERS
        with tracing.span("anything") as s:
            assert s is None


def test_enabled_without_the_sdk_stops_start_up_in_one_line(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The extra not installed, as an import that fails.
    monkeypatch.setitem(sys.modules, "opentelemetry.sdk.trace", None)
    with pytest.raises(ConfigError, match=r"WW_OTEL_ENABLED=true needs the otel extra"):
        tracing.install(Settings(_env_file=None, otel_enabled=True), lambda: True)  # type: ignore[call-arg]
    assert tracing.active_tracer() is None


def test_the_exporter_follows_the_protocol() -> None:
    grpc = tracing._exporter(Settings(_env_file=None, otel_endpoint="http://127.0.0.1:4317"))  # type: ignore[call-arg]
    http = tracing._exporter(
        Settings(_env_file=None, otel_endpoint="http://127.0.0.1:4318", otel_protocol="http")  # type: ignore[call-arg]
    )
    assert type(grpc).__module__.endswith("grpc.trace_exporter")
    assert type(http).__module__.endswith("http.trace_exporter")
    assert http._endpoint == "http://127.0.0.1:4318/v1/traces"  # type: ignore[attr-defined]
    for exporter in (grpc, http):
        exporter.shutdown()


def test_a_failing_span_keeps_the_error_class_and_not_its_message(
    traced: tuple[TestClient, InMemorySpanExporter],
) -> None:
    client, exporter = traced
    _set_telemetry(client, True)
    exporter.clear()
    with pytest.raises(ValueError), tracing.span("ww.test", session="s"):
        raise ValueError(CONTENT)
    (failed,) = [s for s in exporter.get_finished_spans() if s.name == "ww.test"]
    assert failed.attributes is not None and failed.attributes["error.type"] == "ValueError"
    assert failed.status.description == "ValueError"
    assert failed.events == ()  # no exception event, which would carry the message
    assert "Pl4nted" not in repr(failed.to_json())
