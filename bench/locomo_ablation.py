"""The LoCoMo ablation: which learning mechanism helps recall, and what feedback teaches.

Every configuration runs the simulated-feedback pass (``run_inprocess_pass`` with
``feedback=True``): all mechanisms on, then each one off in turn. Later-half recall@10
(the second half of each conversation's questions, asked after the first half's feedback)
shows what learning does to the questions that come later.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from bench.locomo_data import Dataset
from bench.metrics import GROUPS, QuestionScore, aggregate
from ww.control.flags import MECHANISMS, Flags

__all__ = ["ablation_configs", "ablation_markdown", "later_half", "later_half_ids"]

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


def _cell(summary: Mapping[str, Any], group: str) -> str:
    v = summary.get(group, {}).get(_HEADLINE)
    return f"{v:.3f}" if isinstance(v, float) else "-"


def ablation_markdown(
    ww: Mapping[str, Mapping[str, Any]], late: Mapping[str, Mapping[str, Any]]
) -> str:
    """recall@10 per category and on the later half, one row per pass."""
    lines = [
        "## Learning ablation (simulated feedback unless noted)",
        "",
        "| pass | " + " | ".join(GROUPS) + " | later half (all) |",
        "|---|" + "---|" * (len(GROUPS) + 1),
    ]
    for name, summary in ww.items():
        cells = [_cell(summary, g) for g in GROUPS]
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {_cell(late[name], 'all')} |")
    return "\n".join(lines) + "\n"
