"""Learning formulas against hand-computed values, and their properties."""

from __future__ import annotations

import math
from datetime import timedelta

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.factories import T0
from ww.engine.ff_encoder import FFEncoder, FFFormatError
from ww.engine.learning import (
    actr_activation,
    actr_feature,
    eligibility,
    hebbian_decay,
    hebbian_strengthen,
    is_labile,
    modulated_hebbian,
    query_value,
    query_weights,
    reconsolidate,
    reward_rating_good,
    update_value,
)

unit_interval = st.floats(0.0, 1.0)
days = st.floats(0.0, 3650.0)


# -- ACT-R ----------------------------------------------------------------------------------
def test_actr_activation_hand_computed() -> None:
    # accesses 1 and 4 days ago, d = 0.5: B = ln(1^-0.5 + 4^-0.5) = ln 1.5
    now = T0 + timedelta(days=4)
    times = [T0, T0 + timedelta(days=3)]
    assert math.isclose(actr_activation(times, now), math.log(1.5))
    # logistic(ln x) = x / (1 + x): 1.5 / 2.5
    assert math.isclose(actr_feature(times, now), 0.6)
    # d = 1: B = ln(1 + 1/4)
    assert math.isclose(actr_activation(times, now, decay=1.0), math.log(1.25))


def test_actr_no_access_and_one_day_old_access() -> None:
    assert actr_activation([], T0) == -math.inf
    assert actr_feature([], T0) == 0.0
    assert math.isclose(actr_feature([T0], T0 + timedelta(days=1)), 0.5)
    # an access "now" is floored at one minute, not infinite
    assert math.isclose(actr_activation([T0], T0), math.log(1440.0**0.5))


@given(days, days)
def test_actr_older_accesses_activate_less(a: float, b: float) -> None:
    young, old = sorted((a, b))
    now = T0 + timedelta(days=4000)
    t_young = now - timedelta(days=young)
    t_old = now - timedelta(days=old)
    assert actr_feature([t_old], now) <= actr_feature([t_young], now)
    assert 0.0 <= actr_feature([t_old, t_young], now) <= 1.0


# -- Hebbian --------------------------------------------------------------------------------
def test_hebbian_hand_computed() -> None:
    assert math.isclose(hebbian_strengthen(0.2, 0.1), 0.28)  # 0.2 + 0.1 * 0.8
    assert math.isclose(hebbian_strengthen(0.0, 0.1), 0.1)
    assert math.isclose(hebbian_decay(0.5, timedelta(days=30), 30.0), 0.5 / math.e)
    assert math.isclose(modulated_hebbian(0.5, 0.1, 0.5), 0.525)  # + 0.1*0.5*(1-0.5)
    assert math.isclose(modulated_hebbian(0.5, 0.1, -0.5), 0.475)  # - 0.1*0.5*0.5
    assert modulated_hebbian(0.3, 0.1, 0.0) == 0.3


@given(unit_interval, st.floats(0.0, 1.0), st.floats(-1.0, 1.0), days)
def test_hebbian_weights_stay_in_unit_interval(
    w: float, rate: float, m: float, elapsed: float
) -> None:
    for out in (
        hebbian_strengthen(w, rate),
        modulated_hebbian(w, rate, m),
        hebbian_decay(w, timedelta(days=elapsed), 30.0),
    ):
        assert 0.0 <= out <= 1.0
    assert hebbian_strengthen(w, rate) >= w


@given(unit_interval, days, days)
def test_hebbian_decay_is_monotone(w: float, a: float, b: float) -> None:
    short, long = sorted((a, b))
    assert hebbian_decay(w, timedelta(days=long), 30.0) <= hebbian_decay(
        w, timedelta(days=short), 30.0
    )
    assert hebbian_decay(w, timedelta(days=short), 30.0) <= w


# -- reward prediction error -----------------------------------------------------------------
def test_three_factor_value_hand_computed() -> None:
    u = update_value(0.5, 1.0, 0, three_factor=True, rate=0.3, trace=1.0)
    assert math.isclose(u.error, 0.5)
    assert math.isclose(u.value, 0.65)  # 0.5 + 0.3 * 1 * 0.5
    assert u.rewards == 1
    half = update_value(0.5, 1.0, 0, three_factor=True, rate=0.3, trace=0.5)
    assert math.isclose(half.value, 0.575)  # the trace halves the step
    down = update_value(0.5, 0.0, 0, three_factor=True, rate=0.3, trace=1.0)
    assert math.isclose(down.error, -0.5) and math.isclose(down.value, 0.35)
    none = update_value(0.5, 1.0, 0, three_factor=True, rate=0.3, trace=0.0)
    assert none.value == 0.5  # not eligible: no credit


def test_without_three_factor_value_is_the_running_mean() -> None:
    u = update_value(0.5, 1.0, 1, three_factor=False, rate=0.3, trace=0.0)
    assert math.isclose(u.value, 0.75)  # mean of 0.5 and 1
    u2 = update_value(u.value, 0.0, u.rewards, three_factor=False, rate=0.3, trace=0.0)
    assert math.isclose(u2.value, 0.5)  # mean of 0.5, 1, 0


@given(unit_interval, st.integers(0, 1000), st.booleans(), unit_interval, unit_interval)
def test_zero_error_changes_nothing(
    v: float, n: int, three: bool, rate: float, trace: float
) -> None:
    u = update_value(v, v, n, three_factor=three, rate=rate, trace=trace)
    assert (u.value, u.error, u.rewards) == (v, 0.0, n)


@given(unit_interval, unit_interval, st.integers(0, 1000), st.booleans(), unit_interval)
def test_value_stays_in_unit_interval_and_moves_toward_reward(
    v: float, r: float, n: int, three: bool, trace: float
) -> None:
    u = update_value(v, r, n, three_factor=three, rate=0.3, trace=trace)
    assert 0.0 <= u.value <= 1.0
    assert abs(r - u.value) <= abs(r - v) + 1e-12


def test_eligibility_hand_computed() -> None:
    now = T0 + timedelta(hours=6)
    assert math.isclose(eligibility([T0], now, 6.0), math.exp(-1))
    assert eligibility([T0, now], now, 6.0) == 1.0  # capped
    assert eligibility([], now, 6.0) == 0.0


def test_feedback_rating_and_lability() -> None:
    assert reward_rating_good(0.5) and not reward_rating_good(0.49)
    assert is_labile(T0, T0 + timedelta(hours=5), 6.0)
    assert not is_labile(T0, T0 + timedelta(hours=7), 6.0)
    assert not is_labile(None, T0, 6.0)


# -- reconsolidation ----------------------------------------------------------------------
def test_reconsolidation_hand_computed() -> None:
    m = np.array([1.0, 0.0], np.float32)
    q = np.array([0.0, 1.0], np.float32)
    free = reconsolidate(m, q, 1.0, 0.1, 1.0)  # step 0.1 * (q - m) = (-0.1, 0.1)
    expected = np.array([0.9, 0.1]) / math.hypot(0.9, 0.1)
    assert np.allclose(free, expected, atol=1e-6)
    capped = reconsolidate(m, q, 1.0, 0.1, 0.05)  # step norm 0.1414 capped to 0.05
    c = 0.05 / math.sqrt(2)
    assert np.allclose(capped, np.array([1 - c, c]) / math.hypot(1 - c, c), atol=1e-6)
    assert np.array_equal(reconsolidate(m, q, 0.0, 0.1, 0.05), m)  # no reward, no move


@given(st.integers(0, 10_000), unit_interval, st.floats(0.0, 0.2))
def test_reconsolidation_step_is_capped(seed: int, reward: float, cap: float) -> None:
    rng = np.random.default_rng(seed)
    m, q = (v / np.linalg.norm(v) for v in rng.standard_normal((2, 8)).astype(np.float32))
    out = reconsolidate(m, q, reward, 1.0, cap)
    assert math.isclose(float(np.linalg.norm(out)), 1.0, rel_tol=1e-5)
    # renormalising a unit vector moved by at most ``cap`` moves it by at most ~2 cap
    assert float(np.linalg.norm(out - m)) <= 2 * cap + 1e-5


# -- FF encoder -----------------------------------------------------------------------------
# -- query-tied value --------------------------------------------------------------------
def _unit(seed: int, dim: int = 8) -> np.ndarray:
    v = np.random.default_rng(seed).normal(size=dim).astype(np.float32)
    return v / np.linalg.norm(v)


def _at_cosine(q: np.ndarray, cos: float, seed: int) -> np.ndarray:
    """A unit vector whose cosine with unit ``q`` is ``cos``."""
    r = _unit(seed, len(q)).astype(np.float64)
    r -= (r @ q) * q
    r /= np.linalg.norm(r)
    return (cos * q + math.sqrt(max(0.0, 1.0 - cos * cos)) * r).astype(np.float32)


def test_query_weights_and_value_hand_computed() -> None:
    q = _unit(0)
    q64 = q.astype(np.float64)
    same, half, below = q, _at_cosine(q64, 0.95, 1), _at_cosine(q64, 0.89, 2)
    w = query_weights(q, [same, half, below, np.zeros(8, np.float32)], 0.9)
    # 1 for the same query, (0.95 - 0.9) / 0.1 for cosine 0.95, 0 at or below 0.9 and for
    # a zero vector.
    assert np.allclose(w, [1.0, 0.5, 0.0, 0.0], atol=1e-5)
    assert query_weights(q, [], 0.9).shape == (0,)
    # The same query, reward 1, prior 1: the mean of V and the rating.
    assert math.isclose(query_value(0.65, [(1.0, 1.0)], 1.0), 0.825)
    assert math.isclose(query_value(0.35, [(0.5, 0.0)], 1.0), 0.35 / 1.5)
    # Two ratings, prior 0.5: (0.5 * 0.5 + 1 * 1 + 1 * 0) / 2.5.
    assert math.isclose(query_value(0.5, [(1.0, 1.0), (1.0, 0.0)], 0.5), 0.5)
    # No weight above 0: V itself.
    assert query_value(0.7, [(0.0, 0.0)], 1.0) == 0.7
    assert query_value(0.7, [], 1.0) == 0.7


@given(
    unit_interval,
    st.lists(st.tuples(st.floats(-1.0, 1.0), unit_interval), max_size=6),
    st.floats(0.0, 0.99),
    st.floats(0.01, 100.0),
    st.integers(0, 10_000),
)
def test_query_value_is_a_mean_in_the_unit_interval(
    value: float,
    ratings: list[tuple[float, float]],
    similarity: float,
    prior: float,
    seed: int,
) -> None:
    q = _unit(seed).astype(np.float64)
    past = [_at_cosine(q, c, seed + k + 1) for k, (c, _) in enumerate(ratings)]
    w = query_weights(q.astype(np.float32), past, similarity)
    assert np.all((w >= 0.0) & (w <= 1.0 + 1e-6))
    weighted = [(float(x), r) for x, (_, r) in zip(w, ratings, strict=True)]
    got = query_value(value, weighted, prior)
    assert 0.0 <= got <= 1.0
    # A weighted mean of V and the rewards that count: never outside their range.
    counted = [r for (c, r) in ratings if c > similarity - 1e-4]
    lo, hi = min([value, *counted]), max([value, *counted])
    assert lo - 1e-6 <= got <= hi + 1e-6
    if not any(c > similarity - 1e-4 for c, _ in ratings):
        assert got == value
    # Raising a reward never lowers the result.
    if weighted:
        raised = query_value(value, [(weighted[0][0], 1.0), *weighted[1:]], prior)
        assert raised >= got - 1e-9


@given(unit_interval, st.floats(0.5, 0.98), st.floats(0.0, 1.0), st.integers(0, 10_000))
def test_a_nearer_past_query_counts_more(
    value: float, similarity: float, reward: float, seed: int
) -> None:
    q = _unit(seed).astype(np.float64)
    near, far = _at_cosine(q, 0.999, seed + 1), _at_cosine(q, (1 + similarity) / 2, seed + 2)
    w_near, w_far = query_weights(q.astype(np.float32), [near, far], similarity)
    assert w_near > w_far > 0.0
    pull_near = abs(query_value(value, [(float(w_near), reward)], 1.0) - value)
    pull_far = abs(query_value(value, [(float(w_far), reward)], 1.0) - value)
    assert pull_near >= pull_far - 1e-9


def test_ff_identity_has_no_effect() -> None:
    enc = FFEncoder.identity(4)
    q = np.array([1, 0, 0, 0], np.float32)
    mems = np.eye(4, dtype=np.float32)
    assert enc.is_identity and enc.version == 0
    assert np.array_equal(enc.features(q, mems), np.full(4, 0.5))
    assert math.isclose(enc.goodness(q, mems[1]), 2.0)  # ||q + m||^2


def test_ff_step_hand_computed() -> None:
    e1 = np.array([1.0, 0.0], np.float32)
    enc = FFEncoder.identity(2).train(e1, e1, positive=True, rate=0.1)
    # a = 2 e1, G = θ = 4, p = 0.5, dL/dG = -0.5: ΔW = 0.1 * 0.5 * 2 * outer(2 e1, e1)
    assert enc.delta is not None
    assert np.allclose(enc.delta, [[0.2, 0.0], [0.0, 0.0]])
    assert enc.version == 1
    # gain = 2 (Δq·q + Δq·m) + |Δq|^2 = 2 (0.2 + 0.2) + 0.04 = 0.84
    assert math.isclose(
        float(enc.features(e1, e1[None, :])[0]), 1 / (1 + math.exp(-0.84)), rel_tol=1e-6
    )
    assert math.isclose(enc.goodness(e1, e1), 2.2**2, rel_tol=1e-6)


def test_ff_learns_positive_up_negative_down() -> None:
    rng = np.random.default_rng(7)
    q, good, bad = (v / np.linalg.norm(v) for v in rng.standard_normal((3, 16)).astype(np.float32))
    enc = FFEncoder.identity(16)
    for _ in range(5):
        enc = enc.train(q, good, positive=True, rate=0.05)
        enc = enc.train(q, bad, positive=False, rate=0.05)
    f_good, f_bad = enc.features(q, np.stack([good, bad]))
    assert f_good > 0.5 > f_bad
    assert enc.train(q, good, positive=True, rate=0.0) is enc  # no error, no step


def test_ff_round_trips_and_refuses_foreign_blobs() -> None:
    rng = np.random.default_rng(1)
    q, m = rng.standard_normal((2, 8)).astype(np.float32)
    enc = FFEncoder.identity(8).train(q, m, positive=True, rate=0.1)
    back = FFEncoder.from_bytes(enc.to_bytes(), enc.version)
    assert back.version == 1 and back.delta is not None and enc.delta is not None
    assert np.array_equal(back.delta, enc.delta)
    with pytest.raises(FFFormatError):
        FFEncoder.from_bytes(b"NOPE" + enc.to_bytes()[4:], 1)
    with pytest.raises(FFFormatError):
        FFEncoder.from_bytes(enc.to_bytes()[:-4], 1)
