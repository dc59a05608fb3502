"""Fused scoring of recall candidates.

Candidates come from the dense index and the keyword index; each gets a vector of features
in [0, 1] and the preset's weights turn it into one score. Ties break on the id, so a recall
is reproducible given the stores and the clock.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from uuid import UUID

import numpy as np

from ww.engine.dynamics import Fsrs, recency
from ww.models import Episode, ScoreParts
from ww.storage.ports import ScoredId, Vector

__all__ = ["PRESETS", "Preset", "Scored", "Weights", "fuse"]


class Preset(StrEnum):
    BALANCED = "balanced"
    SEMANTIC = "semantic"
    KEYWORD = "keyword"
    RECENT = "recent"


@dataclass(frozen=True, slots=True)
class Weights:
    semantic: float
    keyword: float
    retrievability: float
    recency: float
    importance: float


PRESETS: Mapping[Preset, Weights] = {
    Preset.BALANCED: Weights(0.60, 0.25, 0.05, 0.05, 0.05),
    Preset.SEMANTIC: Weights(0.85, 0.05, 0.04, 0.03, 0.03),
    Preset.KEYWORD: Weights(0.30, 0.60, 0.04, 0.03, 0.03),
    Preset.RECENT: Weights(0.45, 0.15, 0.05, 0.30, 0.05),
}


@dataclass(frozen=True, slots=True)
class Scored:
    episode: Episode
    score: float
    parts: ScoreParts


def fuse(
    *,
    episodes: Mapping[UUID, Episode],
    dense: Sequence[ScoredId],
    keyword: Sequence[ScoredId],
    extra_vectors: Mapping[UUID, Vector],
    query_vector: Vector,
    weights: Weights,
    fsrs: Fsrs,
    now: datetime,
    limit: int,
) -> list[Scored]:
    """Score every candidate that still exists and return the best ``limit``."""
    cosine = {s.id: s.score for s in dense}
    for ident, vec in extra_vectors.items():
        cosine.setdefault(ident, float(np.dot(vec, query_vector)))
    best_kw = max((s.score for s in keyword), default=0.0)
    kw_norm = {s.id: (s.score / best_kw if best_kw > 0 else 0.0) for s in keyword}

    scored: list[Scored] = []
    for ident, ep in episodes.items():
        parts = ScoreParts(
            semantic=min(1.0, max(0.0, cosine.get(ident, 0.0))),
            keyword=kw_norm.get(ident, 0.0),
            retrievability=fsrs.retrievability(ep.fsrs, now),
            recency=recency(ep.timestamp, now),
            importance=ep.importance,
        )
        score = (
            weights.semantic * parts.semantic
            + weights.keyword * parts.keyword
            + weights.retrievability * parts.retrievability
            + weights.recency * parts.recency
            + weights.importance * parts.importance
        )
        scored.append(Scored(ep, score, parts))
    scored.sort(key=lambda s: (-s.score, str(s.episode.id)))
    return scored[:limit]
