"""Fused scoring of recall candidates.

Candidates come from the dense index and the keyword index. Each gets features in [0, 1];
the preset's weights turn the direct evidence (semantic, keyword) and the memory's state
(retrievability, recency, importance) into a base score. Two contextual terms follow:

- ``neighbour``: the best base score among the candidate's temporal neighbours (the
  episodes just before and after it in the session) that another speaker said. An answer
  often sits in the reply to the turn that matches the question's words; the next message
  of the same speaker is a thought of its own and gets no share of its neighbour's score
  (a neighbour whose speaker, or the candidate's, is unknown still counts).
- ``speaker``: 1 when every word of the candidate's speaker appears in the query, so "what
  did Ana say…" prefers Ana's turns.
- ``spread``: spreading activation over learned CO_RETRIEVED (Hebbian) edges: the best
  ``weight * base score`` among the candidate's Hebbian neighbours that are candidates too.

Two time terms follow the query's time cues (``ww.engine.time_cues``), 0 when it has none:
``time`` is 1 for a memory inside the window a relative expression names ("last week" at
the recall's ``at``) and falls off outside it; ``newest`` ranks the candidates by age (1 the
newest) when the query asks for the current or latest state, so the newest of similar
memories wins.

Learned features (see ``ww.engine.recall_learning``) join the base score when given: ACT-R
base-level ``activation``, the learned ``value`` and the FF encoder's ``ff`` goodness.
Feedback's ``value`` V enters as ``w.value * (0.5 + g * (V - 0.5))`` with ``g =
VALUE_GAIN`` above 0.5 and 1 below: a memory nobody rated (V = 0.5) scores as if the term
were linear, what rewards teach counts ``VALUE_GAIN`` times, and the bound that
``feedback_margin`` states holds whatever the ratings.

Ties break on the id, so a recall is reproducible given the stores and the clock.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from uuid import UUID

import numpy as np
import numpy.typing as npt

from ww.engine.activation import min_max
from ww.engine.dynamics import Fsrs, recency_many
from ww.engine.time_cues import NO_CUE, TimeCue, window_closeness
from ww.models import ScoreParts, as_utc
from ww.models.api import Preset
from ww.storage.payload import to_micros
from ww.storage.ports import CandidateRow, ScoredId
from ww.storage.ports.learning import DEFAULT_VALUE

__all__ = [
    "PRESETS",
    "VALUE_GAIN",
    "Fusion",
    "Learned",
    "Preset",
    "Scored",
    "Weights",
    "feedback_margin",
    "query_words",
]

_WORD = re.compile(r"\w+", re.UNICODE)


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
    time: float = 0.0
    newest: float = 0.0


@dataclass(frozen=True, slots=True)
class Learned:
    """Learned features of one recall's candidates (absent ids score 0 on each, but for
    ``value``, where absent means unrated: ``DEFAULT_VALUE``).

    ``edges`` maps a candidate to its Hebbian neighbours with the (decayed) edge weight.
    """

    activation: Mapping[UUID, float] = field(default_factory=dict)
    value: Mapping[UUID, float] = field(default_factory=dict)
    ff: Mapping[UUID, float] = field(default_factory=dict)
    edges: Mapping[UUID, Sequence[tuple[UUID, float]]] = field(default_factory=dict)


_NOTHING_LEARNED = Learned()

# How many times a learned value's rise above "unrated" counts. With a gain of 1 the term
# spans only ``w.value`` (0.10): three rewards (V 0.5 -> 0.83) added 0.033, less than the
# usual gap between neighbouring hits, so feedback never showed in the ranking. The shape
# keeps an unrated memory's term at ``0.5 * w.value``, so recall without feedback (every
# read-only recall of the benchmarks) is unchanged to the bit. A fall below unrated stays
# linear: a low reward mostly says "not the answer to this question", and V is the
# memory's, not the query's; amplifying it buried memories that answered later questions
# (LoCoMo's feedback pass gained +0.003 with the gain on both sides, +0.016 with it on
# rewards only; docs/benchmarks.md).
VALUE_GAIN = 3.0


def feedback_margin(weights: Weights) -> float:
    """The most feedback can change the score gap between two candidates of one recall.

    Feedback moves V within [0, 1], so a candidate's own value term rises by at most
    ``w.value * VALUE_GAIN / 2`` and falls by at most ``w.value / 2`` from unrated; it
    trains the FF encoder, whose goodness stays in [0, 1], so the ``ff`` term moves by at
    most ``w.ff`` between two candidates; the neighbour and spread terms pass on at most
    their weights' share of a linked candidate's move. Two candidates' gap therefore moves
    by at most ``(w.value * (VALUE_GAIN + 1) / 2 + w.ff) * (1 + w.neighbour + w.spread)``
    (0.29 for ``balanced``: under half the semantic weight, so, other evidence equal, no
    amount of feedback lifts a memory over one whose cosine is higher by 0.5). One reward
    moves V by at most the value learning rate (0.3 by default), so one thumbs-up lifts a
    memory's value term by at most ``0.3 * w.value * VALUE_GAIN / 2`` (0.045 for
    ``balanced``) for other questions; for the same question the query-tied value
    (``ww.engine.learning.query_value``, a mean of V and past ratings, so in [0, 1] too)
    carries it further, and the bound above still holds.
    """
    spread = 1.0 + weights.neighbour + weights.spread
    return (weights.value * (VALUE_GAIN + 1.0) / 2.0 + weights.ff) * spread


# Weights were chosen on the LoCoMo public split (bench/locomo.py); see docs/benchmarks.md.
# The learned features weigh the same in every preset: they encode use, not the query.
_LEARNED_WEIGHTS: dict[str, float] = {"activation": 0.03, "value": 0.10, "ff": 0.05, "spread": 0.05}
# Time cues weigh the same in every preset too: they follow what the query says about time.
# Chosen on LongMemEval's development split (bench/longmemeval.py); see docs/benchmarks.md.
_TIME_WEIGHTS: dict[str, float] = {"time": 0.20, "newest": 0.05}
PRESETS: Mapping[Preset, Weights] = {
    Preset.BALANCED: Weights(
        0.60,
        0.25,
        0.05,
        0.05,
        0.05,
        neighbour=0.10,
        speaker=0.07,
        **_LEARNED_WEIGHTS,
        **_TIME_WEIGHTS,
    ),
    Preset.SEMANTIC: Weights(
        0.85,
        0.05,
        0.04,
        0.03,
        0.03,
        neighbour=0.05,
        speaker=0.03,
        **_LEARNED_WEIGHTS,
        **_TIME_WEIGHTS,
    ),
    Preset.KEYWORD: Weights(
        0.30,
        0.60,
        0.04,
        0.03,
        0.03,
        neighbour=0.05,
        speaker=0.03,
        **_LEARNED_WEIGHTS,
        **_TIME_WEIGHTS,
    ),
    Preset.RECENT: Weights(
        0.45,
        0.15,
        0.05,
        0.30,
        0.05,
        neighbour=0.05,
        speaker=0.03,
        **_LEARNED_WEIGHTS,
        **_TIME_WEIGHTS,
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


def _replies(speakers: Sequence[str | None], at: int, other: int) -> bool:
    """Whether candidate ``other`` may pass its score on to neighbour ``at``: they are two
    speakers' turns, or either speaker is unknown (``speakers`` as ``_speaker`` keys)."""
    a, b = speakers[at], speakers[other]
    return not a or not b or a != b


def _speaker(name: str | None) -> str | None:
    """A speaker as a person reads the name: "Ana", "ana " and "ANA" are one speaker, and
    a blank name is no speaker."""
    return (name.strip().casefold() or None) if name else None


def _column(values: Mapping[UUID, float], keys: Sequence[int], absent: float = 0.0) -> list[float]:
    """``values`` in the order of ``keys`` (ids' integers), ``absent`` where absent."""
    if not values:
        return [absent] * len(keys)
    by_key = {i.int: v for i, v in values.items()}
    return [by_key.get(k, absent) for k in keys]


# Columns of Fusion's feature matrix, in ScoreParts order less the two contextual terms.
_SEMANTIC, _KEYWORD, _RETRIEVABILITY, _RECENCY, _IMPORTANCE = 0, 1, 2, 3, 4
_SPEAKER, _ACTIVATION, _VALUE, _FF, _TIME, _NEWEST = 5, 6, 7, 8, 9, 10
_FEATURES = 11
_SECONDS_PER_DAY = 86_400.0


def _value_shape(value: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """``0.5 + g * (V - 0.5)``, ``g`` = ``VALUE_GAIN`` above unrated and 1 below; exactly
    0.5 at V = 0.5."""
    rise = value - 0.5
    return 0.5 + np.where(rise > 0.0, VALUE_GAIN, 1.0) * rise


def _days(micros: npt.NDArray[np.int64]) -> npt.NDArray[np.float64]:
    # Seconds first, then days: the rounding of timedelta.total_seconds() / 86400, which the
    # scalar dynamics use.
    return micros / 1e6 / _SECONDS_PER_DAY


def _in_windows(cue: TimeCue, stamps: npt.NDArray[np.int64]) -> npt.NDArray[np.float64]:
    """Per candidate, its best closeness to any of the cue's windows (0 without windows)."""
    best = np.zeros(len(stamps))
    for w in cue.windows:
        start, end = to_micros(w.start), to_micros(w.end)
        outside = _days(np.maximum(start - stamps, 0) + np.maximum(stamps - end, 0))
        best = np.maximum(best, [window_closeness(float(d), w.width_days) for d in outside])
    return best


class Fusion:
    """Scores one recall's candidates: base scores first, then the neighbour term.

    Splitting the two lets the engine look up temporal neighbours only for the candidates
    that can still reach the top ``limit`` (see :meth:`contenders`). Features and scores are
    columns of arrays over the candidates: a recall has about a hundred of them, and a
    Python loop of dict lookups per candidate cost more than the whole keyword search.
    Every sum is evaluated in the same order as its scalar formula, so scores are the ones a
    per-candidate loop gives.
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
        cue: TimeCue = NO_CUE,
    ) -> None:
        """``fsrs`` None leaves retrievability out (the ``fsrs`` flag off); ``temporal``
        False leaves the neighbour term out (``spreading_activation`` off); ``cue`` holds
        the query's time cues, resolved at ``now``."""
        self.weights = weights
        self.learned = learned
        self.temporal = temporal
        self._ids = list(candidates)
        # Keyed by the ids' integers: UUID's hash and equality are Python code, and these
        # maps see several lookups per candidate.
        keys = [i.int for i in self._ids]
        self._index = {key: k for k, key in enumerate(keys)}
        rows = list(candidates.values())
        kw_norm = min_max({s.id: s.score for s in keyword if s.id in candidates})
        now_us = to_micros(as_utc(now))  # a naive clock means UTC, as in the scalar dynamics
        f = np.zeros((_FEATURES, len(rows)))
        f[_SEMANTIC] = np.clip(_column(cosine, keys), 0.0, 1.0)
        f[_KEYWORD] = _column(kw_norm, keys)
        if fsrs is not None:
            f[_RETRIEVABILITY] = fsrs.retrievability_many(
                np.array([r.stability for r in rows], dtype=np.float64),
                _days(now_us - np.array([r.last_review_us for r in rows], dtype=np.int64)),
            )
        f[_RECENCY] = recency_many(
            _days(now_us - np.array([r.timestamp_us for r in rows], dtype=np.int64))
        )
        f[_IMPORTANCE] = [r.importance for r in rows]
        named = {s: _names_speaker(s, words) for s in {r.speaker for r in rows}}
        f[_SPEAKER] = [1.0 if named[r.speaker] else 0.0 for r in rows]
        f[_ACTIVATION] = _column(learned.activation, keys)
        f[_VALUE] = _column(learned.value, keys, DEFAULT_VALUE)
        f[_FF] = _column(learned.ff, keys)
        stamps = np.array([r.timestamp_us for r in rows], dtype=np.int64)
        f[_TIME] = _in_windows(cue, stamps)
        if cue.latest and len(rows) > 1:
            # Rank by age over the candidates: the newest 1, the oldest 0, ties alike.
            order = np.unique(stamps, return_inverse=True)[1]
            f[_NEWEST] = order / max(1, int(order.max()))
        self._features = f
        self._speakers = [_speaker(r.speaker) for r in rows]
        w = weights
        self._base = (
            w.semantic * f[_SEMANTIC]
            + w.keyword * f[_KEYWORD]
            + w.retrievability * f[_RETRIEVABILITY]
            + w.recency * f[_RECENCY]
            + w.importance * f[_IMPORTANCE]
            + w.activation * f[_ACTIVATION]
            + w.value * _value_shape(f[_VALUE])
            + w.ff * f[_FF]
            + w.time * f[_TIME]
            + w.newest * f[_NEWEST]
        )
        # The score before the neighbour and spread terms, which only ever add to it.
        self._floor = self._base + w.speaker * f[_SPEAKER]

    def contenders(self, limit: int) -> list[UUID]:
        """Candidates whose best possible score reaches the ``limit``-th guaranteed score.

        The neighbour and spread terms add at most their weights times the best base score,
        so anything below the ``limit``-th floor by more than that cannot make the cut.
        """
        if len(self._ids) <= limit:
            return list(self._ids)
        kth = -np.partition(-self._floor, limit - 1)[limit - 1]
        # Without Hebbian edges the spread term is 0 for everyone and widens nothing.
        spread = self.weights.spread if self.learned.edges else 0.0
        bonus = (self.weights.neighbour if self.temporal else 0.0) + spread
        cut = kth - bonus * max(0.0, float(self._base.max()))
        return [self._ids[k] for k in np.flatnonzero(self._floor >= cut)]

    def _best_linked(self, links: Iterable[tuple[int, int, float]]) -> npt.NDArray[np.float64]:
        """Per candidate, ``min(1, max(weight * base of linked candidate))``, 0 if none."""
        found = [(k, j, wt) for k, j, wt in links]
        best = np.zeros(len(self._ids))
        if found:
            at, other, weight = (np.array(col) for col in zip(*found, strict=True))
            best.fill(-np.inf)
            np.maximum.at(best, at, weight * self._base[other])
            best[np.isneginf(best)] = 0.0
        return np.minimum(1.0, best)

    def rank(self, limit: int, neighbours: Mapping[UUID, Sequence[UUID]]) -> list[Scored]:
        """The best ``limit``; ``neighbours`` must cover every contender."""
        w, index = self.weights, self._index
        near = np.zeros(len(self._ids))
        if self.temporal:
            near = self._best_linked(
                (at, other, 1.0)
                for i, ns in neighbours.items()
                if (at := index.get(i.int)) is not None
                for n in ns
                if (other := index.get(n.int)) is not None and _replies(self._speakers, at, other)
            )
        spread = self._best_linked(
            (index[i.int], index[n.int], wt)
            for i, es in self.learned.edges.items()
            if i.int in index
            for n, wt in es
            if n.int in index
        )
        score = self._floor + w.neighbour * near + w.spread * spread
        if len(score) > limit:
            # Everything tied with the limit-th score stays in, for the id to break the tie.
            kth = -np.partition(-score, limit - 1)[limit - 1]
            top = np.flatnonzero(score >= kth).tolist()
        else:
            top = list(range(len(score)))
        top.sort(key=lambda k: (-score[k], str(self._ids[k])))
        f = self._features
        out: list[Scored] = []
        for k in top[:limit]:
            parts = ScoreParts(
                semantic=float(f[_SEMANTIC, k]),
                keyword=float(f[_KEYWORD, k]),
                retrievability=float(f[_RETRIEVABILITY, k]),
                recency=float(f[_RECENCY, k]),
                importance=float(f[_IMPORTANCE, k]),
                neighbour=float(near[k]),
                speaker=float(f[_SPEAKER, k]),
                activation=float(f[_ACTIVATION, k]),
                value=float(f[_VALUE, k]),
                ff=float(f[_FF, k]),
                spread=float(spread[k]),
                time=float(f[_TIME, k]),
                newest=float(f[_NEWEST, k]),
            )
            out.append(Scored(self._ids[k], float(score[k]), parts))
        return out
