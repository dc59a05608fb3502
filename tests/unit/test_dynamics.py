from __future__ import annotations

import math
from datetime import timedelta

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from tests.factories import T0
from ww.engine.dynamics import Fsrs, ReviewRating, recency, recency_many


def test_new_state_uses_configured_stability() -> None:
    state = Fsrs(default_stability=2.0).new_state(T0)
    assert state.stability == 2.0
    assert state.last_review == T0
    assert (state.reps, state.lapses) == (0, 0)


def test_retrievability_matches_fsrs6_formula() -> None:
    # FSRS-6: R(t, S) = (1 + F * t / S) ** -w20 with F = 0.9 ** (-1 / w20) - 1, w20 = 0.1542.
    w20 = 0.1542
    factor = 0.9 ** (-1 / w20) - 1
    fsrs = Fsrs(default_stability=3.0)
    state = fsrs.new_state(T0)
    for days in (0.5, 3.0, 10.0, 100.0):
        expected = (1 + factor * days / 3.0) ** -w20
        assert math.isclose(
            fsrs.retrievability(state, T0 + timedelta(days=days)), expected, rel_tol=1e-6
        )
    # by definition R equals the retention target after S days
    assert math.isclose(fsrs.retrievability(state, T0 + timedelta(days=3)), 0.9, rel_tol=1e-6)
    assert fsrs.retrievability(state, T0) == 1.0
    assert fsrs.retrievability(state, T0 - timedelta(days=1)) == 1.0


@given(st.floats(0.01, 1000), st.floats(0, 3650), st.floats(0, 3650))
def test_retrievability_decays_monotonically(stability: float, a: float, b: float) -> None:
    fsrs = Fsrs(default_stability=stability)
    state = fsrs.new_state(T0)
    early, late = sorted((a, b))
    r_early = fsrs.retrievability(state, T0 + timedelta(days=early))
    r_late = fsrs.retrievability(state, T0 + timedelta(days=late))
    assert 0.0 <= r_late <= r_early <= 1.0


def test_good_review_strengthens_again_weakens() -> None:
    fsrs = Fsrs()
    state = fsrs.new_state(T0)
    later = T0 + timedelta(days=1)
    good = fsrs.review(state, ReviewRating.GOOD, later)
    again = fsrs.review(state, ReviewRating.AGAIN, later)
    easy = fsrs.review(state, ReviewRating.EASY, later)
    assert again.stability < state.stability < good.stability < easy.stability
    assert (good.reps, good.lapses, again.lapses) == (1, 0, 1)
    assert again.difficulty > good.difficulty
    assert good.last_review == later


def test_review_never_rewinds_time() -> None:
    fsrs = Fsrs()
    state = fsrs.new_state(T0)
    reviewed = fsrs.review(state, ReviewRating.GOOD, T0 - timedelta(days=3))
    assert reviewed.last_review == T0


def test_review_is_deterministic() -> None:
    fsrs = Fsrs()
    state = fsrs.new_state(T0)
    later = T0 + timedelta(days=4)
    assert fsrs.review(state, ReviewRating.GOOD, later) == fsrs.review(
        state, ReviewRating.GOOD, later
    )


def test_recency_halves_each_half_life() -> None:
    assert recency(T0, T0) == 1.0
    assert math.isclose(recency(T0, T0 + timedelta(days=30)), 0.5)
    assert math.isclose(recency(T0, T0 + timedelta(days=60)), 0.25)
    assert recency(T0 + timedelta(days=5), T0) == 1.0  # the future counts as now


@given(st.lists(st.tuples(st.floats(0, 1000), st.floats(-30, 3650)), min_size=1, max_size=20))
def test_array_forms_equal_the_scalar_ones(memories: list[tuple[float, float]]) -> None:
    fsrs = Fsrs()
    stability = np.array([s for s, _ in memories])
    days = np.array([d for _, d in memories])
    with np.errstate(invalid="raise"):  # a review in the future takes no negative power
        many = fsrs.retrievability_many(stability, days)
        ages = recency_many(days)
    for (s, d), r, age in zip(memories, many, ages, strict=True):
        now = T0 + timedelta(days=d)
        assert math.isclose(r, fsrs.retrievability_at(s, T0, now), rel_tol=1e-9, abs_tol=1e-12)
        assert math.isclose(age, recency(T0, now), rel_tol=1e-9)
