"""The formulas of semantic and procedural memory against hand-computed values."""

from __future__ import annotations

import math
from datetime import timedelta
from uuid import UUID

import pytest

from tests.factories import T0
from ww.engine.activation import (
    HOWTO_FORMULA,
    base_level,
    base_level_probability,
    beta_success_rate,
    howto_confidence,
    min_max,
    spread_activation,
)
from ww.engine.procedural import script_from_steps
from ww.models.procedural import SkillStep

A, B, C, D = (UUID(int=i) for i in range(1, 5))


def test_base_level_single_access_is_minus_half_log_age() -> None:
    # B = ln(100^-0.5) = ln(0.1)
    assert base_level([T0 - timedelta(seconds=100)], T0) == pytest.approx(math.log(0.1))


def test_base_level_sums_the_power_law_over_accesses() -> None:
    # 1^-0.5 + 4^-0.5 = 1.5
    accesses = [T0 - timedelta(seconds=1), T0 - timedelta(seconds=4)]
    assert base_level(accesses, T0) == pytest.approx(math.log(1.5))


def test_base_level_other_decay() -> None:
    # d = 1: 1/2 + 1/4 = 0.75
    accesses = [T0 - timedelta(seconds=2), T0 - timedelta(seconds=4)]
    assert base_level(accesses, T0, decay=1.0) == pytest.approx(math.log(0.75))


def test_base_level_counts_accesses_under_a_second_or_in_the_future_as_one_second() -> None:
    assert base_level([T0], T0) == 0.0
    assert base_level([T0 + timedelta(hours=1)], T0) == 0.0


def test_base_level_without_accesses_is_minus_infinity_and_probability_zero() -> None:
    assert base_level([], T0) == -math.inf
    assert base_level_probability(-math.inf) == 0.0


def test_base_level_probability_is_logistic_around_the_threshold() -> None:
    assert base_level_probability(-5.0) == pytest.approx(0.5)
    # (B - τ) = ln 3 -> 1 / (1 + 1/3)
    assert base_level_probability(-5.0 + math.log(3)) == pytest.approx(0.75)
    assert base_level_probability(-5.0 - math.log(3)) == pytest.approx(0.25)
    # No overflow at the extremes.
    assert base_level_probability(1e6) == pytest.approx(1.0)
    assert base_level_probability(-1e6) == pytest.approx(0.0)


def test_one_access_six_hours_ago_is_at_the_threshold() -> None:
    b = base_level([T0 - timedelta(seconds=math.exp(10))], T0)
    assert b == pytest.approx(-5.0)
    assert base_level_probability(b) == pytest.approx(0.5)


def test_more_recent_and_more_frequent_access_means_higher_activation() -> None:
    hour = timedelta(hours=1)
    once_old = base_level([T0 - 10 * hour], T0)
    once_recent = base_level([T0 - hour], T0)
    twice = base_level([T0 - hour, T0 - 10 * hour], T0)
    assert once_old < once_recent < twice


@pytest.mark.parametrize(
    ("successes", "failures", "rate"),
    [(0, 0, 0.5), (1, 0, 2 / 3), (0, 1, 1 / 3), (3, 1, 4 / 6), (0, 2, 0.25), (8, 0, 0.9)],
)
def test_beta_posterior_mean(successes: int, failures: int, rate: float) -> None:
    assert beta_success_rate(successes, failures) == pytest.approx(rate)


def test_howto_confidence_weights_similarity_and_success() -> None:
    assert howto_confidence(0.8, 0.5) == pytest.approx(0.7 * 0.8 + 0.3 * 0.5)
    assert howto_confidence(1.0, 1.0) == pytest.approx(1.0)
    # A negative cosine counts as no similarity; out-of-range inputs are clipped.
    assert howto_confidence(-0.2, 0.5) == pytest.approx(0.15)
    assert howto_confidence(1.5, 2.0) == pytest.approx(1.0)
    assert "0.7" in HOWTO_FORMULA and "0.3" in HOWTO_FORMULA


def _graph() -> dict[UUID, list[tuple[UUID, float]]]:
    # A-B 0.9, B-C 0.5, A-C 0.2, C-D 1.0, both directions.
    pairs = [(A, B, 0.9), (B, C, 0.5), (A, C, 0.2), (C, D, 1.0)]
    out: dict[UUID, list[tuple[UUID, float]]] = {n: [] for n in (A, B, C, D)}
    for x, y, w in pairs:
        out[x].append((y, w))
        out[y].append((x, w))
    return out


def test_spread_takes_the_best_path_not_the_shortest() -> None:
    got = spread_activation(A, _graph(), depth=3, threshold=0.0, decay=0.8)
    assert got[A].activation == 1.0 and got[A].path == (A,)
    assert got[B].activation == pytest.approx(0.9 * 0.8)  # 0.72
    # Via B: 0.72 * 0.5 * 0.8 = 0.288 beats the direct edge: 0.2 * 0.8 = 0.16.
    assert got[C].activation == pytest.approx(0.288)
    assert got[C].path == (A, B, C)
    assert got[D].activation == pytest.approx(0.288 * 1.0 * 0.8)  # 0.2304
    assert got[D].path == (A, B, C, D) and got[D].depth == 3


def test_spread_depth_limits_the_hops() -> None:
    got = spread_activation(A, _graph(), depth=1, threshold=0.0, decay=0.8)
    assert set(got) == {A, B, C}
    # One hop: only the direct edge reaches C.
    assert got[C].activation == pytest.approx(0.16)
    assert got[C].path == (A, C)
    got2 = spread_activation(A, _graph(), depth=2, threshold=0.0, decay=0.8)
    assert D not in got2
    assert got2[C].activation == pytest.approx(0.288)


def test_spread_threshold_stops_weak_activation() -> None:
    got = spread_activation(A, _graph(), depth=5, threshold=0.25, decay=0.8)
    assert set(got) == {A, B, C}  # D would get 0.2304 < 0.25
    got = spread_activation(A, _graph(), depth=5, threshold=0.75, decay=0.8)
    assert set(got) == {A}


def test_spread_from_an_isolated_seed_is_the_seed_alone() -> None:
    assert set(spread_activation(A, {}, depth=5, threshold=0.0, decay=0.5)) == {A}


def test_min_max() -> None:
    assert min_max({A: 2.0, B: 4.0, C: 3.0}) == {A: 0.0, B: 1.0, C: 0.5}
    assert min_max({A: 7.0}) == {A: 1.0}
    assert min_max({}) == {}


def test_script_is_generated_deterministically_from_steps() -> None:
    steps = [
        SkillStep(order=2, action="Push the image", tool="docker", parameters={"tag": "v1"}),
        SkillStep(
            order=1,
            action="Build",
            tool="make",
            parameters={"target": "all", "jobs": 2},
            expected_outcome="dist/ exists",
        ),
        SkillStep(order=3, action="Tell the team"),
    ]
    expected = (
        "# deploy\n"
        '1. Build [tool: make] (jobs=2, target="all") -> expect: dist/ exists\n'
        '2. Push the image [tool: docker] (tag="v1")\n'
        "3. Tell the team\n"
    )
    assert script_from_steps("deploy", steps) == expected
    assert script_from_steps("deploy", list(reversed(steps))) == expected
