"""Issue 17's targets, each with its figure from one size of bench/latency.py and whether it
is met. A target whose figure this run did not measure says so instead of passing."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["Target", "size_targets", "targets_markdown"]

_SCALE_SIZE = 1_000_000


@dataclass(frozen=True, slots=True)
class Target:
    name: str
    goal: str
    figure: str
    met: bool | None  # None: not measured in this run

    @property
    def verdict(self) -> str:
        if self.met is None:
            return "not measured" if self.figure == "-" else "reported (judged elsewhere)"
        return "met" if self.met else "**not met**"


def _get(r: dict[str, Any], *path: str) -> Any:
    for key in path:
        if not isinstance(r, dict) or key not in r:
            return None
        r = r[key]
    return r


def _recall_c1(r: dict[str, Any]) -> list[Target]:
    c1 = _get(r, "recall_ms", "c1")
    embed, floor = r.get("embed_query_ms"), r.get("http_floor_ms")
    if c1 is None or embed is None or floor is None:
        return [Target("recall c=1 p50", "<= embed + HTTP floor + 5 ms", "-", None)]
    bound = embed + floor + 5
    return [
        Target(
            "recall c=1 p50",
            "<= embed one query + HTTP floor + 5 ms",
            f"{c1['p50']:.1f} ms vs {embed:.1f} + {floor:.1f} + 5 = {bound:.1f} ms",
            c1["p50"] <= bound,
        ),
        Target(
            "recall c=1 p95",
            "<= 2 x p50",
            f"{c1['p95']:.1f} ms vs {2 * c1['p50']:.1f} ms",
            c1["p95"] <= 2 * c1["p50"],
        ),
    ]


def _recall_c8(r: dict[str, Any]) -> Target:
    rate, embed = r.get("recall_per_s_c8"), r.get("embed_only_per_s_c8")
    p95 = _get(r, "recall_ms", "c8", "p95")
    if rate is None or embed is None:
        return Target("recall c=8 throughput", ">= 0.5 x embed-only at c=8", "-", None)
    tail = f", p95 {p95:.0f} ms" if p95 is not None else ""
    return Target(
        "recall c=8 throughput",
        ">= 0.5 x embedding the queries alone at c=8",
        f"{rate:.1f}/s vs 0.5 x {embed:.1f}/s = {0.5 * embed:.1f}/s{tail}",
        rate >= 0.5 * embed,
    )


def _ingest(r: dict[str, Any]) -> Target:
    ingest = r.get("ingest_per_s")
    best = r.get("raw_embed_batched_per_s")
    if ingest is None or best is None:
        return Target("ingest", ">= 0.85 x the model's best batched rate", "-", None)
    return Target(
        "ingest",
        ">= 0.85 x the model's best batched rate (batch 32, sorted by length)",
        f"{ingest:.0f}/s vs 0.85 x {best:.0f}/s = {0.85 * best:.0f}/s",
        ingest >= 0.85 * best,
    )


def _first_recall(r: dict[str, Any]) -> Target:
    first, second = r.get("first_recall_in_session_ms"), r.get("second_recall_in_session_ms")
    if first is None or second is None:
        return Target("first recall in a session", "<= 1.5 x the second", "-", None)
    n = _get(r, "first_recall_in_session", "sessions")
    per = _get(r, "first_recall_in_session", "memories_per_session")
    paired = _get(r, "first_recall_in_session", "paired_ratio_p50")
    also = "" if paired is None else f"; per-session ratio p50 {paired:.2f}"
    return Target(
        "first recall in a session",
        "p50 <= 1.5 x the second recall's p50",
        f"{first:.1f} / {second:.1f} ms = {first / second:.2f} x ({n} sessions of {per}{also})",
        first <= 1.5 * second,
    )


def _long_content(r: dict[str, Any]) -> Target:
    rate = r.get("long_ingest_per_s")
    return Target(
        "long content",
        "every word searchable; ingest cost reported",
        "-" if rate is None else f"{rate:.1f} long memories/s",
        None,
    )


def _scale(size: int, r: dict[str, Any]) -> list[Target]:
    if size < _SCALE_SIZE:
        return []
    rss, start = r.get("rss_mb"), r.get("startup_s")
    p95 = _get(r, "recall_ms", "c1", "p95")
    return [
        Target("1M: RSS", "<= 4 GB", f"{rss} MB", None if rss is None else rss <= 4096),
        Target("1M: start-up", "<= 10 s", f"{start} s", None if start is None else start <= 10),
        Target(
            "1M: recall c=1 p95",
            "<= 50 ms",
            f"{p95} ms",
            None if p95 is None else p95 <= 50,
        ),
    ]


def size_targets(size: int, r: dict[str, Any]) -> list[Target]:
    """Every issue-17 target this benchmark can judge, for one size's results."""
    return [
        *_recall_c1(r),
        _recall_c8(r),
        _ingest(r),
        _first_recall(r),
        _long_content(r),
        *_scale(size, r),
    ]


def targets_markdown(report: dict[str, Any]) -> list[str]:
    """The report's "Issue 17 targets" section, one table row per target and size."""
    lines = [
        "## Issue 17 targets",
        "",
        "Floors measured in the same run: HTTP floor = a 404 through the benchmark's httpx "
        "client (`http_floor_ms`; a bare `http.client` health check is `http_floor_raw_ms`); "
        "embed-only at c=8 runs the server's embedding front (`EmbeddingService`) in the "
        "benchmark's process, as the server has no endpoint that only embeds. The server "
        "tier's target is measured by `bench/vector_scan.py`, not here.",
        "",
        "| size | target | goal | figure | verdict |",
        "|---:|---|---|---|---|",
    ]
    for size, r in report["sizes"].items():
        for t in size_targets(int(size), r):
            lines.append(f"| {size} | {t.name} | {t.goal} | {t.figure} | {t.verdict} |")
    return [*lines, ""]
