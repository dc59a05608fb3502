"""deploy/monitoring: the Prometheus alert rules and the Grafana dashboard name only series
the server really exports, with labels those series really carry, on routes the app really
serves. No PromQL parser is installed, so each expression gets a light check (balanced
brackets, metric and label names); ``promtool check rules`` runs too where a promtool is at
hand (``WW_TEST_PROMTOOL`` or tools/bin/promtool)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client.metrics import MetricWrapperBase

import ww.api.metrics as metrics_module
from tests.deploy.rendering import ROOT
from ww.api import create_app
from ww.config import Settings
from ww.embedding import EmbeddingService, OnnxEmbedder
from ww.engine import build_engine

MONITORING = ROOT / "deploy" / "monitoring"
ALERTS = MONITORING / "alerts.yml"
DASHBOARD = MONITORING / "grafana-dashboard.json"

# Labels Prometheus itself attaches to every scraped series, and the histogram bucket bound.
TARGET_LABELS = frozenset({"job", "instance"})
_SUFFIXES = {
    "counter": ("_total", "_created"),
    "histogram": ("_bucket", "_sum", "_count", "_created"),
    "gauge": ("",),
}
_KEYWORDS = frozenset(
    {
        "by",
        "without",
        "on",
        "ignoring",
        "group_left",
        "group_right",
        "and",
        "or",
        "unless",
        "bool",
        "offset",
    }
)
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
_MATCHERS = re.compile(r"\{([^{}]*)\}")
_GROUPING = re.compile(r"\b(by|without|on|ignoring)\s*\(([^()]*)\)")
_RANGE = re.compile(r"\[[^\[\]]*\]")
_NAME = re.compile(r"[A-Za-z_:][A-Za-z0-9_:]*")


def _exported() -> dict[str, frozenset[str]]:
    """Every series name the app's metrics produce, with the labels each carries."""
    objects: list[Any] = [*vars(metrics_module).values(), *metrics_module.EMBEDDING.values()]
    series: dict[str, frozenset[str]] = {"up": frozenset()}
    for metric in objects:
        if not isinstance(metric, MetricWrapperBase):
            continue
        (family,) = metric.describe()
        labels = frozenset(metric._labelnames)
        for suffix in _SUFFIXES[family.type]:
            series[family.name + suffix] = labels | ({"le"} if suffix == "_bucket" else set())
    return series


EXPORTED = _exported()


def _check_expression(expr: str) -> None:
    """Fails unless ``expr`` has balanced brackets and names only exported series and labels."""
    expr = expr.replace("$__rate_interval", "5m").replace("$job", ".*")
    stack: list[str] = []
    pairs = {")": "(", "]": "[", "}": "{"}
    for char in _STRING.sub('""', expr):
        if char in "([{":
            stack.append(char)
        elif char in pairs:
            assert stack and stack.pop() == pairs[char], f"unbalanced {char!r} in {expr!r}"
    assert not stack, f"unclosed {stack} in {expr!r}"

    # Each selector's label matchers belong to the series they follow.
    for name, matchers in re.findall(
        r"([A-Za-z_:][A-Za-z0-9_:]*)\s*\{([^{}]*)\}", _STRING.sub('""', expr)
    ):
        assert name in EXPORTED, f"{name} is not exported by the server ({expr!r})"
        for label in re.findall(r"([A-Za-z_][A-Za-z0-9_]*)\s*(?:=~|!~|!=|=)", matchers):
            assert label in EXPORTED[name] | TARGET_LABELS, f"{name} has no label {label!r}"

    bare = _RANGE.sub("", _MATCHERS.sub("", _STRING.sub('""', expr)))
    used: set[str] = set()
    for _, grouped in _GROUPING.findall(bare):
        used.update(label.strip() for label in grouped.split(",") if label.strip())
    bare = _GROUPING.sub(" ", bare)
    names = [
        m.group()
        for m in _NAME.finditer(bare)
        if m.group() not in _KEYWORDS and not bare[m.end() :].lstrip().startswith("(")  # a function
    ]
    assert names, f"no series in {expr!r}"
    for name in names:
        assert name in EXPORTED, f"{name} is not exported by the server ({expr!r})"
    available = set().union(*(EXPORTED[n] for n in names)) | TARGET_LABELS
    assert used <= available, f"grouping by {used - available} that no series in {expr!r} has"


def _rules() -> list[dict[str, Any]]:
    doc = yaml.safe_load(ALERTS.read_text())
    assert isinstance(doc, dict) and set(doc) == {"groups"}
    rules: list[dict[str, Any]] = []
    for group in doc["groups"]:
        assert isinstance(group["name"], str) and group["name"]
        assert group["rules"], f"group {group['name']} has no rules"
        rules.extend(group["rules"])
    return rules


def _dashboard_targets() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    return [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]


@pytest.fixture(scope="module")
def route_paths(onnx_embedder: OnnxEmbedder, tmp_path_factory: pytest.TempPathFactory) -> set[str]:
    """The paths of the real app's OpenAPI schema (built, never started)."""
    settings = Settings(data_dir=tmp_path_factory.mktemp("monitoring"))
    engine = build_engine(
        settings, embedder=EmbeddingService(onnx_embedder, cache_size=8, batch_size=8)
    )
    return {path for path in create_app(settings, engine).openapi()["paths"]}


def test_every_alert_rule_is_complete() -> None:
    rules = _rules()
    for rule in rules:
        assert set(rule) <= {"alert", "expr", "for", "labels", "annotations"}, rule
        assert re.fullmatch(r"WorldWeaver[A-Za-z0-9]+", rule["alert"])
        assert re.fullmatch(r"\d+[smh]", rule["for"]), rule["for"]
        assert rule["labels"]["severity"] in {"critical", "warning", "info"}
        assert rule["annotations"]["summary"].strip()
    names = [rule["alert"] for rule in rules]
    assert len(names) == len(set(names)), "alert names repeat"


def test_the_alerts_cover_down_5xx_open_circuits_recall_latency_and_the_backlog() -> None:
    by_name = {rule["alert"]: rule["expr"] for rule in _rules()}
    # Every worker and replica reports the same store-wide backlog: max, never a sum.
    assert "max by (job, type) (ww_pending_vectors)" in by_name["WorldWeaverPendingVectorBacklog"]
    assert "up{" in by_name["WorldWeaverTargetDown"]
    assert 'status=~"5.."' in by_name["WorldWeaverHigh5xxRatio"]
    assert 'ww_circuit_state{state="open"}' in by_name["WorldWeaverCircuitOpen"]
    assert (
        "ww_http_request_duration_seconds_bucket" in by_name["WorldWeaverRecallLatencyOverBudget"]
    )


@pytest.mark.parametrize("source", ["alerts", "dashboard"])
def test_every_expression_names_only_exported_series_and_labels(source: str) -> None:
    exprs = [rule["expr"] for rule in _rules()] if source == "alerts" else _dashboard_targets()
    assert exprs
    for expr in exprs:
        _check_expression(expr)


@pytest.mark.parametrize(
    "bad",
    [
        "rate(ww_http_requests_total[5m]",  # unclosed
        "ww_pending_vector > 100",  # no such series
        'ww_circuit_state{route="x"} == 1',  # no such label on that series
        "sum by (session) (rate(ww_http_requests_total[5m]))",  # grouping by a label no series has
        "rate(ww_http_requests[5m])",  # a counter's family name without _total is not a series
    ],
)
def test_the_expression_check_refuses_what_is_wrong(bad: str) -> None:
    with pytest.raises(AssertionError):
        _check_expression(bad)


def test_recall_latency_alert_watches_routes_the_app_serves(route_paths: set[str]) -> None:
    (expr,) = [r["expr"] for r in _rules() if r["alert"] == "WorldWeaverRecallLatencyOverBudget"]
    (pattern,) = re.findall(r'route=~"([^"]+)"', expr)
    routes = pattern.split("|")
    assert routes
    assert set(routes) <= route_paths, set(routes) - route_paths
    assert {p for p in route_paths if p.endswith("/recall")} <= set(routes)


def test_dashboard_shows_recall_stages_and_the_store_gauges() -> None:
    """The series the engine's metrics added each have a panel: the recall stages' p95 by
    stage, the embedding queue, memories and pending vectors by type."""
    by_title = {
        panel["title"]: [t["expr"] for t in panel["targets"]]
        for panel in json.loads(DASHBOARD.read_text())["panels"]
    }
    [stages] = by_title["Recall stage latency p95"]
    assert stages.startswith("histogram_quantile(0.95, sum by (stage, le)")
    assert "ww_recall_stage_duration_seconds_bucket" in stages
    assert "ww_embedding_queue_wait_seconds_bucket" in by_title["Embedding queue wait p95"][0]
    for title, series in (
        ("Pending vectors by type", "ww_pending_vectors"),
        ("Memories by type", "ww_memories"),
    ):
        assert by_title[title] == [f'max by (type) ({series}{{job=~"$job"}})']


def test_dashboard_takes_its_datasource_from_a_variable() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["schemaVersion"] >= 36
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    for panel in dashboard["panels"]:
        assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == "${datasource}", panel["title"]


def _promtool() -> str | None:
    configured = os.environ.get("WW_TEST_PROMTOOL")
    if configured:
        return configured
    local = ROOT / "tools" / "bin" / "promtool"
    return str(local) if local.exists() else shutil.which("promtool")


@pytest.mark.skipif(
    _promtool() is None,
    reason="no promtool (set WW_TEST_PROMTOOL or put one in tools/bin/); CI does not build it, "
    "the parsing tests above run everywhere",
)
def test_promtool_accepts_the_rules_and_the_dashboards_queries(tmp_path: Path) -> None:
    promtool = _promtool()
    assert promtool is not None
    # The dashboard's queries, with Grafana's variables filled in, as recording rules:
    # promtool parses every one of them as PromQL.
    queries = [
        {
            "record": f"ww:dashboard:{i}",
            "expr": expr.replace("$__rate_interval", "5m").replace("$job", ".*"),
        }
        for i, expr in enumerate(_dashboard_targets())
    ]
    recorded = tmp_path / "dashboard-rules.yml"
    recorded.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": queries}]}))
    for rules in (ALERTS, recorded):
        result = subprocess.run(
            [promtool, "check", "rules", str(rules)],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert result.returncode == 0, result.stdout + result.stderr
        assert "SUCCESS" in result.stdout
