"""Turn rankings into the ``locomo.json`` summary and the ``locomo.md`` report."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from bench.locomo_data import Dataset
from bench.metrics import GROUPS, QuestionScore, aggregate, paired_bootstrap_delta, score_question

__all__ = ["CATEGORY_NAMES", "markdown_report", "per_question", "summarise"]

CATEGORY_NAMES = {"1": "multi-hop", "2": "temporal", "3": "open-domain", "4": "single-hop"}
_HEADLINE = "recall@10"


def per_question(data: Dataset, rankings: Mapping[str, Sequence[str]]) -> list[QuestionScore]:
    """Score one system's rankings; a question it did not answer scores as an empty list."""
    out: list[QuestionScore] = []
    for conv in data.conversations:
        conv_chars = {t.dia_id: len(t.content) for t in conv.turns}
        for q in conv.questions:
            ranked = rankings.get(q.qid, [])
            out.append(
                QuestionScore(
                    q.qid, str(q.category), score_question(ranked, q.evidence, conv_chars)
                )
            )
    return out


def summarise(data: Dataset, rankings: Mapping[str, Sequence[str]]) -> dict[str, Any]:
    return aggregate(per_question(data, rankings))


def _fmt(x: object) -> str:
    return f"{x:.3f}" if isinstance(x, float) else "-"


def _values(scores: Sequence[QuestionScore], group: str) -> list[float]:
    return [s.metrics[_HEADLINE] for s in scores if group in ("all", s.category)]


def markdown_report(
    ww: Mapping[str, Mapping[str, Any]],
    baselines: Mapping[str, Mapping[str, Any]],
    scores: Mapping[str, Sequence[QuestionScore]],
    info: Mapping[str, Any],
) -> str:
    """Tables of recall@10 per category, WW's deltas against the best baseline, details."""
    counts = info.get("questions", {})
    head = [f"{g} ({CATEGORY_NAMES.get(g, 'all')}, n={counts.get(g, '?')})" for g in GROUPS]
    lines = [
        "# LoCoMo retrieval benchmark",
        "",
        f"Dataset `{info.get('dataset')}`: {info.get('conversations')} conversations, "
        f"{info.get('turns')} turns, {counts.get('all')} scored questions (categories 1-4). "
        f"Mode `{info.get('mode')}`, preset `{info.get('preset')}`, "
        f"recall candidates {info.get('recall_candidates')}, model `{info.get('model')}`.",
        "",
        "## Turn-level evidence recall@10",
        "",
        "| system | " + " | ".join(head) + " |",
        "|---|" + "---|" * len(GROUPS),
    ]
    systems = [(f"WW {p}", s) for p, s in ww.items()] + list(baselines.items())
    for name, summary in systems:
        row = [_fmt(summary.get(g, {}).get(_HEADLINE)) for g in GROUPS]
        lines.append(f"| {name} | " + " | ".join(row) + " |")
    lines += ["", "## WW minus the best baseline (recall@10, paired bootstrap 95% CI)", ""]
    lines += ["| WW pass | " + " | ".join(GROUPS) + " |", "|---|" + "---|" * len(GROUPS)]
    for p in ww:
        cells = []
        for g in GROUPS:
            best = max(baselines, key=lambda b: float(baselines[b].get(g, {}).get(_HEADLINE, -1.0)))
            d, lo, hi = paired_bootstrap_delta(
                _values(scores[f"ww.{p}"], g), _values(scores[best], g)
            )
            cells.append(f"{d:+.3f} vs {best} [{lo:+.3f}, {hi:+.3f}]")
        lines.append(f"| {p} | " + " | ".join(cells) + " |")
    metrics = [f"recall@{k}" for k in (1, 5, 10, 20, 50)] + [
        "hit@10",
        "all@10",
        "session_recall@10",
        "mrr",
        "chars@10",
    ]
    lines += ["", "## All scored questions, more metrics", ""]
    lines += ["| system | " + " | ".join(metrics) + " | recall@10 95% CI |"]
    lines += ["|---|" + "---|" * (len(metrics) + 1)]
    for name, summary in systems:
        a = summary.get("all", {})
        row = [f"{a[m]:.0f}" if m == "chars@10" and m in a else _fmt(a.get(m)) for m in metrics]
        ci = a.get(f"{_HEADLINE}_ci95")
        ci_s = f"[{ci[0]:.3f}, {ci[1]:.3f}]" if ci else "-"
        lines.append(f"| {name} | " + " | ".join(row) + f" | {ci_s} |")
    timings = info.get("timings", {})
    lines += ["", "## Run", ""]
    lines += [f"- {k}: {v}" for k, v in timings.items()]
    lines += [
        f"- CPUs: {info.get('cpu_count')}; versions: {info.get('versions')}",
        f"- skipped questions: {info.get('skipped')}; evidence ids repaired "
        f"{info.get('evidence_repaired')}, dropped {info.get('evidence_dropped')}",
        "",
        "Metrics: recall@k is the fraction of a question's evidence turns among the top k, "
        "averaged over questions; hit@k any evidence in the top k; all@k every evidence turn "
        "in the top k; session_recall@10 the fraction of evidence sessions among the sessions "
        "of the top-10 turns; MRR uses the first evidence turn in the top 50; chars@10 is the "
        "mean number of characters returned in the top 10. Category 5 is not scored.",
        "",
    ]
    return "\n".join(lines)
