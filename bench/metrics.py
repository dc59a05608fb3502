"""Retrieval metrics for evidence-turn recall, with bootstrap confidence intervals."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

__all__ = [
    "CI_METRICS",
    "GROUPS",
    "KS",
    "QuestionScore",
    "aggregate",
    "auroc",
    "bootstrap_ci",
    "paired_bootstrap_delta",
    "recall_any_all",
    "relevance_report",
    "score_question",
    "top_is_gold",
]

KS = (1, 5, 10, 20, 50)
GROUPS = ("all", "1", "2", "3", "4")
CI_METRICS = ("recall@10", "hit@10", "mrr")
_SEED = 20240607
_RESAMPLES = 1000


@dataclass(frozen=True, slots=True)
class QuestionScore:
    qid: str
    category: str
    metrics: Mapping[str, float]


def _session(dia_id: str) -> str:
    return dia_id.split(":", 1)[0]


def score_question(
    ranked: Sequence[str | None],
    evidence: Sequence[str],
    chars: Mapping[str, int] | None = None,
) -> dict[str, float]:
    """Metrics of one ranked list of external ids against a question's evidence ids."""
    gold = set(evidence)
    if not gold:
        raise ValueError("a scored question needs at least one evidence id")
    ids = [r for r in dict.fromkeys(ranked) if r is not None]
    out: dict[str, float] = {}
    for k in KS:
        found = len(gold.intersection(ids[:k]))
        out[f"recall@{k}"] = found / len(gold)
        out[f"hit@{k}"] = float(found > 0)
        out[f"all@{k}"] = float(found == len(gold))
    gold_sessions = {_session(e) for e in gold}
    top_sessions = {_session(r) for r in ids[:10]}
    out["session_recall@10"] = len(gold_sessions & top_sessions) / len(gold_sessions)
    first = next((i for i, r in enumerate(ids) if r in gold), None)
    out["mrr"] = 0.0 if first is None else 1.0 / (first + 1)
    if chars is not None:
        out["chars@10"] = float(sum(chars.get(r, 0) for r in ids[:10]))
    return out


def recall_any_all(
    ranked: Sequence[str], gold: Sequence[str], ks: Sequence[int]
) -> dict[str, float]:
    """``recall_any@k`` (some gold item in the top k) and ``recall_all@k`` (every one)."""
    want = set(gold)
    if not want:
        raise ValueError("a scored question needs at least one gold item")
    ids = list(dict.fromkeys(ranked))
    out: dict[str, float] = {}
    for k in ks:
        found = len(want.intersection(ids[:k]))
        out[f"recall_any@{k}"] = float(found > 0)
        out[f"recall_all@{k}"] = float(found == len(want))
    return out


def auroc(positives: Sequence[float], negatives: Sequence[float]) -> float:
    """Probability that a random positive scores above a random negative (ties count half)."""
    if not positives or not negatives:
        return float("nan")
    pos = np.asarray(positives, dtype=np.float64)[:, None]
    neg = np.asarray(negatives, dtype=np.float64)[None, :]
    return float(((pos > neg).sum() + 0.5 * (pos == neg).sum()) / (pos.size * neg.size))


def top_is_gold(
    rankings: Mapping[str, Sequence[str | None]], gold: Mapping[str, Collection[str]]
) -> list[str]:
    """The questions (of ``gold``) whose first ranked id is one of their gold ids."""
    return [q for q, ids in gold.items() if rankings.get(q) and rankings[q][0] in ids]


def relevance_report(
    top: Mapping[str, float],
    answerable: Collection[str],
    unanswerable: Collection[str],
    threshold: float,
    right: Collection[str],
) -> dict[str, float | int]:
    """How well the top hit's relevance tells answerable questions from unanswerable ones:
    AUROC, and precision/recall of "answerable" at ``threshold`` (a question without a hit
    has relevance 0). ``right`` names the answerable questions whose top hit is one of
    their gold memories: ``auroc_right_top`` is how well the relevance tells those from the
    answerable questions whose top hit is something else (what a caller deciding whether to
    trust the first hit needs)."""
    pos = [top.get(q, 0.0) for q in answerable]
    neg = [top.get(q, 0.0) for q in unanswerable]
    ok = set(right)
    hit = [top.get(q, 0.0) for q in answerable if q in ok]
    miss = [top.get(q, 0.0) for q in answerable if q not in ok]
    kept_pos = sum(v >= threshold for v in pos)
    kept = kept_pos + sum(v >= threshold for v in neg)
    return {
        "auroc": auroc(pos, neg),
        "threshold": threshold,
        "precision": kept_pos / kept if kept else float("nan"),
        "recall": kept_pos / len(pos) if pos else float("nan"),
        "unanswerable_dropped": sum(v < threshold for v in neg) / len(neg) if neg else float("nan"),
        "answerable": len(pos),
        "unanswerable": len(neg),
        "mean_answerable": float(np.mean(pos)) if pos else float("nan"),
        "mean_unanswerable": float(np.mean(neg)) if neg else float("nan"),
        "auroc_right_top": auroc(hit, miss),
        "right_top": len(hit),
    }


def bootstrap_ci(
    values: Sequence[float], *, resamples: int = _RESAMPLES, seed: int = _SEED
) -> tuple[float, float]:
    """Percentile 95% interval of the mean, from ``resamples`` resamples with a fixed seed."""
    arr = np.asarray(values, dtype=np.float64)
    if arr.size == 0:
        return (float("nan"), float("nan"))
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, arr.size, size=(resamples, arr.size))
    means = arr[idx].mean(axis=1)
    lo, hi = np.percentile(means, [2.5, 97.5])
    return (float(lo), float(hi))


def paired_bootstrap_delta(
    a: Sequence[float], b: Sequence[float], *, resamples: int = _RESAMPLES, seed: int = _SEED
) -> tuple[float, float, float]:
    """Mean of ``a - b`` over paired questions and its 95% bootstrap interval."""
    if len(a) != len(b):
        raise ValueError("paired samples must have the same length")
    diff = np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)
    if diff.size == 0:
        return (float("nan"), float("nan"), float("nan"))
    lo, hi = bootstrap_ci(diff.tolist(), resamples=resamples, seed=seed)
    return (float(diff.mean()), lo, hi)


def aggregate(
    scores: Sequence[QuestionScore],
    groups: Sequence[str] = GROUPS,
    ci_metrics: Sequence[str] = CI_METRICS,
) -> dict[str, dict[str, float | int | list[float]]]:
    """Mean of each metric per group (``"all"`` and each category), with CIs and counts."""
    out: dict[str, dict[str, float | int | list[float]]] = {}
    for group in groups:
        rows = [s for s in scores if group in ("all", s.category)]
        summary: dict[str, float | int | list[float]] = {"n": len(rows)}
        if rows:
            names = list(rows[0].metrics)
            for name in names:
                summary[name] = float(np.mean([r.metrics[name] for r in rows]))
            for name in ci_metrics:
                if name in rows[0].metrics:
                    lo, hi = bootstrap_ci([r.metrics[name] for r in rows])
                    summary[f"{name}_ci95"] = [lo, hi]
        out[group] = summary
    return out
