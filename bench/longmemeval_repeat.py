"""LongMemEval's repeated-question pass: what feedback on one ask does to the same question
asked again, and what each learning mechanism adds.

Each LongMemEval question has a haystack of its own, so feedback on one question cannot
reach another; the workload where it can matter is the one an agent produces by asking the
same thing twice. Every pass asks each question at its date and once more ``--repeat-hours``
later (``run_inprocess_pass`` with ``repeat_after``); in the feedback passes the first ask is
rated as in the LoCoMo bench (reward 1 for each top-10 hit that is a gold turn, 0 for the
others). Both asks are compared with the read-only pass's asks at the same dates, paired by
question: the first ask shows what a configuration costs a question seen for the first time
(nothing is learned yet), the second what the feedback bought.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from bench.locomo_ablation import delta_cell, paired_delta
from bench.longmemeval_data import LmeData
from bench.longmemeval_report import score_rankings, summarise
from bench.metrics import QuestionScore

__all__ = [
    "ASKS",
    "DELTA_METRICS",
    "RepeatScores",
    "repeat_markdown",
    "repeat_summary",
    "score_passes",
]

# The first ask and the second: the keys of every pass's scores and deltas.
ASKS = ("first", "repeat")
DELTA_METRICS = ("turn/recall_all@5", "session/recall_all@5", "turn/recall_all@10")
REFERENCE = "read_only"
ALL_ON = "ablation.all_on"

# Pass -> ask -> the per-question scores.
RepeatScores = Mapping[str, Mapping[str, Sequence[QuestionScore]]]


def score_passes(
    lme: LmeData, rankings: Mapping[str, Mapping[str, Mapping[str, Sequence[str]]]]
) -> dict[str, dict[str, list[QuestionScore]]]:
    """``rankings[pass][ask]`` (question id -> ranked turn ids) scored per question."""
    return {
        name: {ask: score_rankings(lme, r) for ask, r in asks.items()}
        for name, asks in rankings.items()
    }


def repeat_summary(lme: LmeData, scores: RepeatScores) -> dict[str, Any]:
    """Per pass and ask: the summary by question type, and each ``DELTA_METRICS`` minus the
    read-only pass's on the same ask, paired by question (``[mean, lo, hi]``). An ablation
    pass ``ablation.no_<m>`` also gets ``mechanism``: ``ablation.all_on`` minus it, paired,
    which is what mechanism ``m`` adds with everything else on."""
    ref, all_on = scores[REFERENCE], scores.get(ALL_ON)

    def ask_summary(name: str, ask: str, own: Sequence[QuestionScore]) -> dict[str, Any]:
        out: dict[str, Any] = {
            "summary": summarise(lme, own),
            "vs_read_only": {m: paired_delta(own, ref[ask], metric=m) for m in DELTA_METRICS},
        }
        if all_on is not None and name.startswith("ablation.no_"):
            out["mechanism"] = {m: paired_delta(all_on[ask], own, metric=m) for m in DELTA_METRICS}
        return out

    return {
        name: {ask: ask_summary(name, ask, asks[ask]) for ask in ASKS if ask in asks}
        for name, asks in scores.items()
    }


def _value(ask: Mapping[str, Any], metric: str) -> str:
    v = ask["summary"]["all"].get(metric)
    return f"{v:.3f}" if isinstance(v, float) else "-"


def _mechanism_rows(summary: Mapping[str, Mapping[str, Any]]) -> list[str]:
    metric = DELTA_METRICS[0]
    lines = [
        f"### What each mechanism adds ({metric}: all on minus all on but it, paired)",
        "",
        "| mechanism | first ask [95% CI] | second ask [95% CI] |",
        "|---|---|---|",
    ]
    for name, asks in summary.items():
        if name.startswith("ablation.no_"):
            cells = [delta_cell(asks[a].get("mechanism", {}).get(metric)) for a in ASKS]
            lines.append(f"| {name.removeprefix('ablation.no_')} | " + " | ".join(cells) + " |")
    return [*lines, ""]


def repeat_markdown(summary: Mapping[str, Mapping[str, Any]], repeat_hours: float) -> str:
    """One table per ask: the headline metrics of every pass and their paired differences
    from read-only; then each mechanism's own effect when the ablation ran."""
    titles = {
        "first": "First ask (nothing learned yet: the configuration's cost to a new question)",
        "repeat": f"Second ask, {repeat_hours:g} h later (after feedback on the first)",
    }
    lines = ["## Repeated question", ""]
    for ask in ASKS:
        lines += [
            f"### {titles[ask]}",
            "",
            "| pass | "
            + " | ".join(DELTA_METRICS)
            + " | "
            + " | ".join(f"Δ {m} [95% CI]" for m in DELTA_METRICS)
            + " |",
            "|---|" + "---|" * (2 * len(DELTA_METRICS)),
        ]
        for name, asks in summary.items():
            if ask not in asks:
                continue
            row = asks[ask]
            cells = [_value(row, m) for m in DELTA_METRICS]
            if name != REFERENCE:
                cells += [delta_cell(row["vs_read_only"][m]) for m in DELTA_METRICS]
            else:
                cells += [""] * len(DELTA_METRICS)
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
        lines.append("")
    if ALL_ON in summary:
        lines += _mechanism_rows(summary)
    return "\n".join(lines)
