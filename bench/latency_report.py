"""Report helpers for bench/latency.py: run info, the markdown file and the console table."""

from __future__ import annotations

import os
import platform
from datetime import UTC, datetime
from importlib import metadata
from typing import Any

from bench.latency_load import INDEXING_THRESHOLD, MAINT_INTERVAL_S, MAINT_QUIET_S
from bench.latency_targets import targets_markdown
from ww.embedding import OnnxEmbedder

__all__ = ["info", "markdown", "table"]


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


def info(embedder: OnnxEmbedder) -> dict[str, Any]:
    dists = (
        "world-weaver",
        "onnxruntime",
        "qdrant-edge-py",
        "fastapi",
        "uvicorn",
        "httpx",
        "numpy",
        "tokenizers",
    )
    return {
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "versions": {d: _version(d) for d in dists},
        "model": embedder.model_id,
        "embedder_per_text": embedder.per_text,
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "loadavg_start": [round(x, 2) for x in os.getloadavg()],
        "maintenance": {
            "indexing_threshold": INDEXING_THRESHOLD,
            "interval_s": MAINT_INTERVAL_S,
            "quiet_s": MAINT_QUIET_S,
        },
    }


def _fmt(d: dict[str, float] | None) -> str:
    return "-" if d is None else f"{d['p50']:.1f} / {d['p95']:.1f} / {d['p99']:.1f}"


def _num(r: dict[str, Any], key: str, digits: int) -> str:
    value = r.get(key)
    return "-" if value is None else f"{value:.{digits}f}"


def _long(r: dict[str, Any]) -> str:
    rate = _num(r, "long_ingest_per_s", 1)
    if "long_parts_per_memory" not in r:
        return rate
    return f"{rate} ({r['long_parts_per_memory']} parts, {r['long_cost_per_char_ratio']}x)"


def _ratio_b(r: dict[str, Any]) -> str:
    value = r.get("ingest_ratio_batched")
    if value is None:
        return "-"
    return f"{value:.2f} ({'met' if value >= 0.85 else 'not met'})"


def markdown(report: dict[str, Any]) -> str:
    inf = report["info"]
    v = inf["versions"]
    lines = [
        "# World Weaver latency benchmark",
        "",
        f"{inf['date']} - {inf['cpu_count']} CPUs, Python {inf['python']}, "
        f"onnxruntime {v['onnxruntime']}, qdrant-edge-py {v['qdrant-edge-py']}, "
        f"fastapi {v['fastapi']}, uvicorn {v['uvicorn']}; model {inf['model']} "
        f"(one text per run: {inf['embedder_per_text']}). Load average at start: "
        f"{' '.join(str(x) for x in inf['loadavg_start'])}.",
        "",
        "Recall columns are client-side p50 / p95 / p99 in ms (learn=false, limit 10), in the "
        "final index state (after the maintenance HNSW build where one happened). Overhead = "
        "recall c1 p50 - time to embed one query alone (target <= 2 ms at 100k); ingest ratio = "
        "API batch ingest rate / bare embedder rate in the same run; ratio b = ingest rate / "
        "the model's best batched rate (batch 32, sorted by length; issue 17 target >= 0.85). "
        "Long ingest: memories/s of long memories (characters each in the JSON), their parts "
        "(further vectors) each, and what a character of them costs against one of the short "
        "memories (x).",
        "",
        "| size | ingest/s | raw embed/s | ratio | raw batched/s | ratio b | long ingest/s "
        "| recall c=1 | recall c=8 | embed query ms "
        "| overhead ms | HTTP floor ms | peak RSS MB | startup s |",
        "|---:|---:|---:|---:|---:|---:|---:|---|---|---:|---:|---:|---:|---:|",
    ]
    for size, r in report["sizes"].items():
        lines.append(
            f"| {size} | {r['ingest_per_s']:.0f} | {r['raw_embed_per_s']:.0f} "
            f"| {r['ingest_ratio']:.2f} | {_num(r, 'raw_embed_batched_per_s', 0)} "
            f"| {_ratio_b(r)} | {_long(r)} "
            f"| {_fmt(r['recall_ms']['c1'])} "
            f"| {_fmt(r['recall_ms']['c8'])} | {r['embed_query_ms']:.1f} "
            f"| {r['overhead_p50_ms']:.1f} | {r['http_floor_ms']:.1f} | {r['rss_mb']} "
            f"| {r['startup_s']:.1f} |"
        )
    lines += [
        "",
        "## Before and after the vector-index build",
        "",
        "| size | phase | recall c=1 | recall c=8 | load avg | build wait s | final index |",
        "|---:|---|---|---|---|---:|---|",
    ]
    for size, r in report["sizes"].items():
        idx = r.get("index") or {}
        idx_s = f"{idx.get('indexed_vectors', '?')}/{idx.get('points', '?')} indexed"
        for name in ("before_optimise", "after_optimise"):
            ph = r["recall_phases"].get(name)
            if ph is None:
                lines.append(f"| {size} | {name} | - | - | - | - | {idx_s}: no build |")
                continue
            load = " ".join(str(x) for x in ph["loadavg"])
            waited = r.get("optimise_wait_s")
            wait = waited if name == "after_optimise" and waited is not None else "-"
            lines.append(
                f"| {size} | {name} | {_fmt(ph['c1'])} | {_fmt(ph['c8'])} | {load} "
                f"| {wait} | {idx_s} |"
            )
    notes = [
        f"- {size}: HNSW build(s) started during ingest at {', '.join(ev)}"
        for size, r in report["sizes"].items()
        if (ev := r.get("optimise_during_ingest"))
    ]
    if notes:
        lines += ["", *notes]
    lines += ["", *targets_markdown(report)]
    lines += ["", "Run: `" + report["command"] + "`", ""]
    return "\n".join(lines)


def table(report: dict[str, Any]) -> str:
    head = (
        f"{'size':>7} {'ingest/s':>9} {'raw/s':>7} {'ratio':>6} {'c1 p50/p95/p99':>20} "
        f"{'c8 p50/p95/p99':>22} {'embq':>6} {'ovh':>6} {'rssMB':>7} {'start':>6}"
    )
    rows = [head]
    for size, r in report["sizes"].items():
        rows.append(
            f"{size:>7} {r['ingest_per_s']:>9.1f} {r['raw_embed_per_s']:>7.1f} "
            f"{r['ingest_ratio']:>6.2f} {_fmt(r['recall_ms']['c1']):>20} "
            f"{_fmt(r['recall_ms']['c8']):>22} {r['embed_query_ms']:>6.1f} "
            f"{r['overhead_p50_ms']:>6.1f} {r['rss_mb']!s:>7} {r['startup_s']:>6.1f}"
        )
    return "\n".join(rows)
