"""Memory dynamics as pure functions: FSRS retrievability and reviews, recency decay.

FSRS formulas come from the ``fsrs`` package (FSRS-6); World Weaver keeps only the card
state it needs (stability, difficulty, last review, counts) and always treats a memory as a
card in the Review state, since a memory has no learning steps.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from enum import IntEnum
from functools import cached_property

import numpy as np
import numpy.typing as npt
from fsrs import Card, Rating, Scheduler, State

from ww.models import FSRSState, as_utc

__all__ = ["Fsrs", "ReviewRating", "recency", "recency_many"]

_INITIAL_DIFFICULTY = 5.0
_SECONDS_PER_DAY = 86_400.0


class ReviewRating(IntEnum):
    AGAIN = 1
    HARD = 2
    GOOD = 3
    EASY = 4


@dataclass(frozen=True)
class Fsrs:
    """FSRS with World Weaver's defaults (``WW_FSRS_*``).

    ``default_stability`` is the days until a new memory's retrievability falls to
    ``retention_target``: FSRS's own stability is the days until it falls to 90 %, so a new
    memory's FSRS stability is scaled to meet the target (equal to it at the default 0.9). A
    higher target thus gives new memories a higher stability and a slower decay.
    """

    default_stability: float = 1.0
    retention_target: float = 0.9

    @cached_property
    def _scheduler(self) -> Scheduler:
        # No fuzzing: the core must be deterministic given inputs and a clock.
        return Scheduler(desired_retention=self.retention_target, enable_fuzzing=False)

    def new_state(self, now: datetime) -> FSRSState:
        return FSRSState(
            stability=self.initial_stability,
            difficulty=_INITIAL_DIFFICULTY,
            last_review=now,
            reps=0,
            lapses=0,
        )

    def _card(self, state: FSRSState) -> Card:
        return Card(
            card_id=1,
            state=State.Review,
            step=None,
            stability=max(state.stability, 1e-3),
            difficulty=state.difficulty,
            due=state.last_review,
            last_review=state.last_review,
        )

    def retrievability(self, state: FSRSState, now: datetime) -> float:
        """Probability of recall now, in [0, 1]; 1 at the moment of the last review."""
        return self.retrievability_at(state.stability, state.last_review, now)

    def retrievability_at(self, stability: float, last_review: datetime, now: datetime) -> float:
        elapsed_days = (as_utc(now) - last_review).total_seconds() / _SECONDS_PER_DAY
        if elapsed_days <= 0:
            return 1.0
        # The FSRS-6 forgetting curve with the package's decay parameter (w20), evaluated on
        # fractional days: the package itself floors to whole days, which would make every
        # memory younger than a day look perfectly retained.
        r = (1.0 + self._factor * elapsed_days / max(stability, 1e-3)) ** self._decay
        return float(min(1.0, max(0.0, r)))

    def retrievability_many(
        self, stability: npt.NDArray[np.float64], elapsed_days: npt.NDArray[np.float64]
    ) -> npt.NDArray[np.float64]:
        """:meth:`retrievability_at` of many memories at once (a recall's candidates)."""
        # Clamped so that a review in the future (replaced by 1 below) takes no power of a
        # negative number.
        elapsed = np.maximum(elapsed_days, 0.0)
        r = (1.0 + self._factor * elapsed / np.maximum(stability, 1e-3)) ** self._decay
        return np.where(elapsed_days <= 0, 1.0, np.clip(r, 0.0, 1.0))

    @cached_property
    def initial_stability(self) -> float:
        """The FSRS stability S with R(default_stability) = retention_target.

        R(t) = (1 + F·t/S)^decay, so 1 + F·D/S = target^(1/decay): S = F·D / (target^(1/decay) - 1).
        """
        at_target = float(self.retention_target ** (1.0 / self._decay)) - 1.0
        return self.default_stability * self._factor / at_target

    @property
    def formula(self) -> str:
        """The forgetting curve with this scheduler's constants, as the explorer shows it."""
        return f"R(t) = (1 + {self._factor:.4f}·t/S)^{self._decay:.4f}, t and S in days"

    @cached_property
    def _decay(self) -> float:
        return -float(self._scheduler.parameters[20])

    @cached_property
    def _factor(self) -> float:
        return float(0.9 ** (1.0 / self._decay) - 1.0)

    def review(self, state: FSRSState, rating: ReviewRating, now: datetime) -> FSRSState:
        now = as_utc(now)
        if now < state.last_review:
            # A caller-set clock behind the last review must not rewind the memory.
            now = state.last_review
        card, _ = self._scheduler.review_card(self._card(state), Rating(int(rating)), now)
        stability = state.stability if card.stability is None else float(card.stability)
        difficulty = state.difficulty if card.difficulty is None else float(card.difficulty)
        return FSRSState(
            stability=stability,
            difficulty=min(10.0, max(1.0, difficulty)),
            last_review=now,
            reps=state.reps + 1,
            lapses=state.lapses + (1 if rating == ReviewRating.AGAIN else 0),
        )


def recency(event_time: datetime, now: datetime, half_life_days: float = 30.0) -> float:
    """1 for an event happening now, halving every ``half_life_days`` (future counts as now)."""
    age_days = max(0.0, (as_utc(now) - as_utc(event_time)).total_seconds() / _SECONDS_PER_DAY)
    return math.exp(-math.log(2.0) * age_days / half_life_days)


def recency_many(
    age_days: npt.NDArray[np.float64], half_life_days: float = 30.0
) -> npt.NDArray[np.float64]:
    """:func:`recency` of many events at once, given their ages in days."""
    return np.exp(-math.log(2.0) * np.maximum(age_days, 0.0) / half_life_days)
