"""Score LongMemEval rankings at turn and session level and write the Markdown report."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from bench.longmemeval_data import LmeData, turn_session
from bench.metrics import QuestionScore, aggregate, recall_any_all

__all__ = ["CI_METRICS", "KS", "groups", "markdown_report", "score_rankings", "summarise"]

KS = (5, 10, 50)
CI_METRICS = (
    "turn/recall_all@5",
    "session/recall_all@5",
    "turn/recall_all@10",
    "session/recall_all@10",
)
_HEADLINES = ("session/recall_all@5", "turn/recall_all@5", "turn/recall_any@10")


def _sessions(ids: Sequence[str]) -> list[str]:
    """Sessions in order of their best turn."""
    return list(dict.fromkeys(turn_session(i) for i in ids))


def score_rankings(data: LmeData, rankings: Mapping[str, Sequence[str]]) -> list[QuestionScore]:
    """Turn and session recall_any/recall_all of every scored question; a question the
    system did not answer scores as an empty ranking."""
    out: list[QuestionScore] = []
    for q in data.scored:
        ranked = list(dict.fromkeys(rankings.get(q.qid, [])))
        metrics = {f"turn/{k}": v for k, v in recall_any_all(ranked, q.evidence, KS).items()} | {
            f"session/{k}": v
            for k, v in recall_any_all(_sessions(ranked), _sessions(q.evidence), KS).items()
        }
        out.append(QuestionScore(q.qid, data.types[q.qid], metrics))
    return out


def groups(data: LmeData) -> tuple[str, ...]:
    return ("all", *sorted({data.types[q.qid] for q in data.scored}))


def summarise(data: LmeData, scores: Sequence[QuestionScore]) -> dict[str, Any]:
    return aggregate(scores, groups(data), CI_METRICS)


def _fmt(x: object) -> str:
    return f"{x:.3f}" if isinstance(x, float) else "-"


def _ci(row: Mapping[str, Any], metric: str) -> str:
    ci = row.get(f"{metric}_ci95")
    return f" [{ci[0]:.3f}, {ci[1]:.3f}]" if ci else ""


def markdown_report(
    ww: Mapping[str, Mapping[str, Any]],
    baselines: Mapping[str, Mapping[str, Any]],
    info: Mapping[str, Any],
) -> str:
    """One table per headline metric: every system by question type, then the run's details."""
    names = list(next(iter(ww.values())))
    counts = {g: ww["read_only"][g].get("n", "?") for g in names}
    lines = [
        "# LongMemEval retrieval benchmark",
        "",
        f"Dataset `{info.get('dataset')}`: {info.get('questions')} questions, "
        f"{info.get('scored')} scored (abstention and gold-less ones left out), "
        f"{info.get('turns')} user turns. Mode `{info.get('mode')}`, preset "
        f"`{info.get('preset')}`, model `{info.get('model')}`. Sessions are ranked by their "
        f"best turn among the top {info.get('top_k')} turns.",
        "",
    ]
    systems = {**{f"ww.{p}": s for p, s in ww.items()}, **baselines}
    for metric in _HEADLINES:
        lines += [
            f"## {metric}",
            "",
            "| system | " + " | ".join(f"{g} (n={counts[g]})" for g in names) + " |",
            "|---|" + "---|" * len(names),
        ]
        for name, summary in systems.items():
            cells = [_fmt(summary[g].get(metric)) + _ci(summary[g], metric) for g in names]
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
        lines.append("")
    relevance = info.get("relevance")
    if relevance:
        lines += [
            "## Relevance of the top hit (answerable vs abstention; right vs wrong first hit)",
            "",
        ]
        lines += [f"- {k}: {_fmt(v) if isinstance(v, float) else v}" for k, v in relevance.items()]
        lines.append("")
    lines += ["## Run", ""]
    lines += [f"- {k}: {v}" for k, v in info.items() if k not in ("relevance", "versions")]
    lines.append(f"- versions: {info.get('versions')}")
    return "\n".join(lines) + "\n"
