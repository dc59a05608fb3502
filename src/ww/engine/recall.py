"""Fused scoring of recall candidates.

Candidates come from the dense index and the keyword index. Each gets features in [0, 1];
the preset's weights turn the direct evidence (semantic, keyword) and the memory's state
(retrievability, recency, importance) into a base score. Two contextual terms follow:

- ``neighbour``: the best base score among the candidate's temporal neighbours (the
  episodes just before and after it in the session). An answer often sits in the turn next
  to the one that matches the question's words.
- ``speaker``: 1 when every word of the candidate's speaker appears in the query, so "what
  did Ana say…" prefers Ana's turns.

Ties break on the id, so a recall is reproducible given the stores and the clock.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from uuid import UUID

from ww.engine.dynamics import Fsrs, recency
from ww.models import ScoreParts
from ww.storage.ports import CandidateRow, ScoredId

__all__ = ["PRESETS", "Fusion", "Preset", "Scored", "Weights", "query_words"]

_WORD = re.compile(r"\w+", re.UNICODE)


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
    neighbour: float = 0.0
    speaker: float = 0.0


# Weights were chosen on the LoCoMo public split (bench/locomo.py); see docs/benchmarks.md.
PRESETS: Mapping[Preset, Weights] = {
    Preset.BALANCED: Weights(0.60, 0.25, 0.05, 0.05, 0.05, neighbour=0.10, speaker=0.07),
    Preset.SEMANTIC: Weights(0.85, 0.05, 0.04, 0.03, 0.03, neighbour=0.05, speaker=0.03),
    Preset.KEYWORD: Weights(0.30, 0.60, 0.04, 0.03, 0.03, neighbour=0.05, speaker=0.03),
    Preset.RECENT: Weights(0.45, 0.15, 0.05, 0.30, 0.05, neighbour=0.05, speaker=0.03),
}


@dataclass(frozen=True, slots=True)
class Scored:
    id: UUID
    score: float
    parts: ScoreParts


def query_words(query: str) -> frozenset[str]:
    return frozenset(_WORD.findall(query.lower()))


def _names_speaker(speaker: str | None, words: Collection[str]) -> bool:
    if not speaker:
        return False
    tokens = _WORD.findall(speaker.lower())
    return bool(tokens) and all(t in words for t in tokens)


def _min_max(values: Mapping[UUID, float]) -> dict[UUID, float]:
    # bm25 has no fixed scale; stretching the candidates' range to [0, 1] keeps a weak best
    # match from looking as strong as a decisive one relative to the rest.
    if not values:
        return {}
    lo, hi = min(values.values()), max(values.values())
    span = hi - lo
    return {i: (v - lo) / span if span > 0 else 1.0 for i, v in values.items()}


class Fusion:
    """Scores one recall's candidates: base scores first, then the neighbour term.

    Splitting the two lets the engine look up temporal neighbours only for the candidates
    that can still reach the top ``limit`` (see :meth:`contenders`).
    """

    def __init__(
        self,
        *,
        candidates: Mapping[UUID, CandidateRow],
        cosine: Mapping[UUID, float],
        keyword: Sequence[ScoredId],
        weights: Weights,
        fsrs: Fsrs,
        now: datetime,
        words: Collection[str] = frozenset(),
    ) -> None:
        self.weights = weights
        kw_norm = _min_max({s.id: s.score for s in keyword if s.id in candidates})
        # Plain tuples while scoring every candidate; ScoreParts only for the winners.
        self.features: dict[UUID, tuple[float, float, float, float, float, float]] = {}
        self.base: dict[UUID, float] = {}
        for ident, row in candidates.items():
            f = (
                min(1.0, max(0.0, cosine.get(ident, 0.0))),
                kw_norm.get(ident, 0.0),
                fsrs.retrievability_at(row.stability, row.last_review, now),
                recency(row.timestamp, now),
                row.importance,
                1.0 if _names_speaker(row.speaker, words) else 0.0,
            )
            self.features[ident] = f
            self.base[ident] = (
                weights.semantic * f[0]
                + weights.keyword * f[1]
                + weights.retrievability * f[2]
                + weights.recency * f[3]
                + weights.importance * f[4]
            )

    def _floor(self, ident: UUID) -> float:
        return self.base[ident] + self.weights.speaker * self.features[ident][5]

    def contenders(self, limit: int) -> list[UUID]:
        """Candidates whose best possible score reaches the ``limit``-th guaranteed score.

        The neighbour term adds at most ``weights.neighbour * best base``, so anything below
        the ``limit``-th floor by more than that cannot make the cut.
        """
        if len(self.base) <= limit:
            return list(self.base)
        floors = sorted((self._floor(i) for i in self.base), reverse=True)
        cut = floors[limit - 1] - self.weights.neighbour * max(self.base.values())
        return [i for i in self.base if self._floor(i) >= cut]

    def rank(self, limit: int, neighbours: Mapping[UUID, Sequence[UUID]]) -> list[Scored]:
        """The best ``limit``; ``neighbours`` must cover every contender."""
        w = self.weights
        ranked: list[tuple[float, str, UUID, float]] = []
        for ident in self.base:
            near = min(
                1.0,
                max(
                    (self.base[n] for n in neighbours.get(ident, ()) if n in self.base), default=0.0
                ),
            )
            score = self._floor(ident) + w.neighbour * near
            ranked.append((-score, str(ident), ident, near))
        ranked.sort()
        out: list[Scored] = []
        for neg_score, _, ident, near in ranked[:limit]:
            f = self.features[ident]
            parts = ScoreParts(
                semantic=f[0],
                keyword=f[1],
                retrievability=f[2],
                recency=f[3],
                importance=f[4],
                neighbour=near,
                speaker=f[5],
            )
            out.append(Scored(ident, -neg_score, parts))
        return out
