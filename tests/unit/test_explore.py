"""The pure parts of the explorer's reads: the forgetting curve's samples and histograms."""

from __future__ import annotations

from datetime import timedelta
from itertools import pairwise

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.factories import T0
from ww.engine.dynamics import Fsrs
from ww.engine.explore import forgetting_curve, histogram
from ww.models import FSRSState

FSRS = Fsrs()


def state(stability: float, days_before: float = 0.0) -> FSRSState:
    return FSRSState(
        stability=stability, difficulty=5.0, last_review=T0 - timedelta(days=days_before)
    )


@given(
    stability=st.floats(0.0, 3650.0),
    elapsed=st.floats(0.0, 400.0),
    days=st.floats(0.01, 3650.0),
    points=st.integers(2, 500),
)
def test_curve_starts_at_one_falls_monotonically_and_matches_the_engine(
    stability: float, elapsed: float, days: float, points: int
) -> None:
    s = state(stability, elapsed)
    curve = forgetting_curve(FSRS, s, T0, days, points)
    assert len(curve) == points
    assert curve[0].at == s.last_review and curve[0].retrievability == 1.0
    assert abs((curve[-1].at - (T0 + timedelta(days=days))).total_seconds()) < 1e-3
    assert all(a.at < b.at for a, b in pairwise(curve))
    assert all(a.retrievability >= b.retrievability for a, b in pairwise(curve))
    for p in (curve[1], curve[points // 2], curve[-1]):
        assert p.retrievability == pytest.approx(FSRS.retrievability(s, p.at), abs=1e-9)


def test_a_review_in_the_future_starts_the_curve_now_at_one() -> None:
    s = state(2.0, days_before=-3.0)
    curve = forgetting_curve(FSRS, s, T0, 10.0, 11)
    assert curve[0].at == T0
    # Until the review the memory counts as just reviewed, as recall treats it.
    assert [p.retrievability for p in curve[:4]] == [1.0] * 4
    assert curve[4].retrievability < 1.0


@given(
    st.lists(st.floats(0.0, 1.0), min_size=1, max_size=200),
    st.integers(2, 50),
)
def test_histogram_counts_every_value_once(values: list[float], bins: int) -> None:
    edges = np.linspace(0.0, 1.0, bins + 1)
    h = histogram(np.array(values), edges)
    assert len(h.edges) == bins + 1 and len(h.counts) == bins
    assert sum(h.counts) == len(values)
