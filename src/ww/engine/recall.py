"""Fused scoring of recall candidates.

Candidates come from the dense index and the keyword index. Each gets features in [0, 1];
the preset's weights turn the direct evidence (semantic, keyword) and the memory's state
(retrievability, recency, importance) into a base score. Two contextual terms follow:

- ``neighbour``: the best base score among the candidate's temporal neighbours (the
  episodes just before and after it in the session). An answer often sits in the turn next
  to the one that matches the question's words.
- ``speaker``: 1 when every word of the candidate's speaker appears in the query, so "what
  did Ana say…" prefers Ana's turns.
- ``spread``: spreading activation over learned CO_RETRIEVED (Hebbian) edges: the best
  ``weight * base score`` among the candidate's Hebbian neighbours that are candidates too.

Learned features (see ``ww.engine.adaptive``) join the base score when given: ACT-R
base-level ``activation``, the learned ``value`` and the FF encoder's ``ff`` goodness.

Ties break on the id, so a recall is reproducible given the stores and the clock.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from uuid import UUID

from ww.engine.dynamics import Fsrs, recency
from ww.models import ScoreParts
from ww.storage.ports import CandidateRow, ScoredId

__all__ = ["PRESETS", "Fusion", "Learned", "Preset", "Scored", "Weights", "query_words"]

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
    activation: float = 0.0
    value: float = 0.0
    ff: float = 0.0
    spread: float = 0.0


@dataclass(frozen=True, slots=True)
class Learned:
    """Learned features of one recall's candidates (absent ids score 0 on each).

    ``edges`` maps a candidate to its Hebbian neighbours with the (decayed) edge weight.
    """

    activation: Mapping[UUID, float] = field(default_factory=dict)
    value: Mapping[UUID, float] = field(default_factory=dict)
    ff: Mapping[UUID, float] = field(default_factory=dict)
    edges: Mapping[UUID, Sequence[tuple[UUID, float]]] = field(default_factory=dict)


_NOTHING_LEARNED = Learned()

# Weights were chosen on the LoCoMo public split (bench/locomo.py); see docs/benchmarks.md.
# The learned features weigh the same in every preset: they encode use, not the query.
_LEARNED_WEIGHTS: dict[str, float] = {"activation": 0.03, "value": 0.10, "ff": 0.05, "spread": 0.05}
PRESETS: Mapping[Preset, Weights] = {
    Preset.BALANCED: Weights(
        0.60, 0.25, 0.05, 0.05, 0.05, neighbour=0.10, speaker=0.07, **_LEARNED_WEIGHTS
    ),
    Preset.SEMANTIC: Weights(
        0.85, 0.05, 0.04, 0.03, 0.03, neighbour=0.05, speaker=0.03, **_LEARNED_WEIGHTS
    ),
    Preset.KEYWORD: Weights(
        0.30, 0.60, 0.04, 0.03, 0.03, neighbour=0.05, speaker=0.03, **_LEARNED_WEIGHTS
    ),
    Preset.RECENT: Weights(
        0.45, 0.15, 0.05, 0.30, 0.05, neighbour=0.05, speaker=0.03, **_LEARNED_WEIGHTS
    ),
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
        fsrs: Fsrs | None,
        now: datetime,
        words: Collection[str] = frozenset(),
        learned: Learned = _NOTHING_LEARNED,
        temporal: bool = True,
    ) -> None:
        """``fsrs`` None leaves retrievability out (the ``fsrs`` flag off); ``temporal``
        False leaves the neighbour term out (``spreading_activation`` off)."""
        self.weights = weights
        self.learned = learned
        self.temporal = temporal
        kw_norm = _min_max({s.id: s.score for s in keyword if s.id in candidates})
        # Plain tuples while scoring every candidate; ScoreParts only for the winners.
        self.features: dict[UUID, tuple[float, ...]] = {}
        self.base: dict[UUID, float] = {}
        for ident, row in candidates.items():
            f = (
                min(1.0, max(0.0, cosine.get(ident, 0.0))),
                kw_norm.get(ident, 0.0),
                0.0
                if fsrs is None
                else fsrs.retrievability_at(row.stability, row.last_review, now),
                recency(row.timestamp, now),
                row.importance,
                1.0 if _names_speaker(row.speaker, words) else 0.0,
                learned.activation.get(ident, 0.0),
                learned.value.get(ident, 0.0),
                learned.ff.get(ident, 0.0),
            )
            self.features[ident] = f
            self.base[ident] = (
                weights.semantic * f[0]
                + weights.keyword * f[1]
                + weights.retrievability * f[2]
                + weights.recency * f[3]
                + weights.importance * f[4]
                + weights.activation * f[6]
                + weights.value * f[7]
                + weights.ff * f[8]
            )

    def _floor(self, ident: UUID) -> float:
        return self.base[ident] + self.weights.speaker * self.features[ident][5]

    def contenders(self, limit: int) -> list[UUID]:
        """Candidates whose best possible score reaches the ``limit``-th guaranteed score.

        The neighbour and spread terms add at most their weights times the best base score,
        so anything below the ``limit``-th floor by more than that cannot make the cut.
        """
        if len(self.base) <= limit:
            return list(self.base)
        floors = sorted((self._floor(i) for i in self.base), reverse=True)
        # Without Hebbian edges the spread term is 0 for everyone and widens nothing.
        spread = self.weights.spread if self.learned.edges else 0.0
        bonus = (self.weights.neighbour if self.temporal else 0.0) + spread
        cut = floors[limit - 1] - bonus * max(0.0, max(self.base.values()))
        return [i for i in self.base if self._floor(i) >= cut]

    def rank(self, limit: int, neighbours: Mapping[UUID, Sequence[UUID]]) -> list[Scored]:
        """The best ``limit``; ``neighbours`` must cover every contender."""
        w = self.weights
        edges = self.learned.edges
        ranked: list[tuple[float, str, UUID, float, float]] = []
        for ident in self.base:
            near = 0.0
            if self.temporal:
                near = min(
                    1.0,
                    max(
                        (self.base[n] for n in neighbours.get(ident, ()) if n in self.base),
                        default=0.0,
                    ),
                )
            spread = min(
                1.0,
                max(
                    (wt * self.base[n] for n, wt in edges.get(ident, ()) if n in self.base),
                    default=0.0,
                ),
            )
            score = self._floor(ident) + w.neighbour * near + w.spread * spread
            ranked.append((-score, str(ident), ident, near, spread))
        ranked.sort()
        out: list[Scored] = []
        for neg_score, _, ident, near, spread in ranked[:limit]:
            f = self.features[ident]
            parts = ScoreParts(
                semantic=f[0],
                keyword=f[1],
                retrievability=f[2],
                recency=f[3],
                importance=f[4],
                neighbour=near,
                speaker=f[5],
                activation=f[6],
                value=f[7],
                ff=f[8],
                spread=spread,
            )
            out.append(Scored(ident, -neg_score, parts))
        return out
