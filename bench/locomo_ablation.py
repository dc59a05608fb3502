"""The LoCoMo ablation: which learning mechanism helps recall, and what feedback teaches.

Every configuration runs the simulated-feedback pass (``run_inprocess_pass`` with
``feedback=True``): all mechanisms on, then each one off in turn. Later-half recall@10
(the second half of each conversation's questions, asked after the first half's feedback)
shows what learning does to the questions that come later. Each pass's recall@10 is also
compared with the read-only pass question by question (``paired_delta``): a per-pass
interval over a few hundred questions is too wide to show a gain of a few points, while the
paired difference's interval is not.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from bench.locomo_data import Dataset
from bench.metrics import GROUPS, QuestionScore, aggregate, paired_bootstrap_delta
from ww.control.flags import MECHANISMS, Flags

__all__ = [
    "ablation_configs",
    "ablation_markdown",
    "delta_cell",
    "later_half",
    "later_half_ids",
    "paired_delta",
]

_HEADLINE = "recall@10"


def ablation_configs() -> dict[str, Flags]:
    """``all_on`` and ``no_<mechanism>`` for each mechanism, independent of the env."""
    all_on = Flags(**dict.fromkeys(MECHANISMS, True))
    return {"all_on": all_on, **{f"no_{m}": all_on.without(m) for m in MECHANISMS}}


def later_half_ids(data: Dataset) -> set[str]:
    """Question ids in the second half of each conversation (feedback came before them)."""
    out: set[str] = set()
    for conv in data.conversations:
        qs = conv.questions
        out.update(q.qid for q in qs[len(qs) // 2 :])
    return out


def later_half(
    scores: Sequence[QuestionScore], ids: set[str]
) -> dict[str, dict[str, float | int | list[float]]]:
    return aggregate([s for s in scores if s.qid in ids])


def paired_delta(
    scores: Sequence[QuestionScore],
    reference: Sequence[QuestionScore],
    ids: set[str] | None = None,
    metric: str = _HEADLINE,
) -> list[float]:
    """``[mean, lo, hi]`` of ``metric`` (recall@10) minus the reference's, paired by
    question (95% bootstrap interval); ``ids`` restricts it to those questions."""
    ref = {s.qid: s.metrics[metric] for s in reference}
    pairs = [(s.metrics[metric], ref[s.qid]) for s in scores if ids is None or s.qid in ids]
    d, lo, hi = paired_bootstrap_delta([a for a, _ in pairs], [b for _, b in pairs])
    return [d, lo, hi]


def delta_cell(delta: Sequence[float] | None) -> str:
    if not delta:
        return "-"
    d, lo, hi = delta
    return f"{d:+.3f} [{lo:+.3f}, {hi:+.3f}]"


def _cell(summary: Mapping[str, Any], group: str) -> str:
    v = summary.get(group, {}).get(_HEADLINE)
    return f"{v:.3f}" if isinstance(v, float) else "-"


def ablation_markdown(
    ww: Mapping[str, Mapping[str, Any]],
    late: Mapping[str, Mapping[str, Any]],
    deltas: Mapping[str, Mapping[str, Sequence[float]]] | None = None,
) -> str:
    """recall@10 per category and on the later half, one row per pass; with ``deltas``
    (``paired_delta`` per pass, keys ``all`` and ``later_half``) the paired differences
    from read-only too."""
    deltas = deltas or {}
    lines = [
        "## Learning ablation (simulated feedback unless noted)",
        "",
        "| pass | "
        + " | ".join(GROUPS)
        + " | later half (all) | Δ vs read-only [95% CI] | Δ later half |",
        "|---|" + "---|" * (len(GROUPS) + 3),
    ]
    for name, summary in ww.items():
        cells = [_cell(summary, g) for g in GROUPS] + [_cell(late[name], "all")]
        d = deltas.get(name, {})
        cells += [delta_cell(d.get("all")), delta_cell(d.get("later_half"))]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
