"""Learning dynamics as pure functions: ACT-R activation, Hebbian weights, reward
prediction error with an eligibility trace, the lability window, reconsolidation and the
query-tied value.

Nothing here touches a store or a clock; the engine passes times in. Every weight and
value stays in [0, 1], and a zero prediction error changes nothing.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
import numpy.typing as npt

__all__ = [
    "ValueUpdate",
    "actr_activation",
    "actr_feature",
    "eligibility",
    "hebbian_decay",
    "hebbian_strengthen",
    "is_labile",
    "modulated_hebbian",
    "query_value",
    "query_weights",
    "reconsolidate",
    "reward_rating_good",
    "update_value",
]

_SECONDS_PER_DAY = 86_400.0
# An access "now" would make t^-d infinite; ACT-R implementations floor the age the same way.
_MIN_AGE_DAYS = 1.0 / 1440.0  # one minute


def _age_days(then: datetime, now: datetime) -> float:
    return max(_MIN_AGE_DAYS, (now - then).total_seconds() / _SECONDS_PER_DAY)


def actr_activation(access_times: Sequence[datetime], now: datetime, decay: float = 0.5) -> float:
    """ACT-R base-level activation ``B = ln Σ_j t_j^(-d)``, ages in days.

    ``-inf`` for a memory never accessed (no evidence of use at all).
    """
    total = sum(_age_days(t, now) ** -decay for t in access_times)
    return math.log(total) if total > 0 else -math.inf


def actr_feature(access_times: Sequence[datetime], now: datetime, decay: float = 0.5) -> float:
    """Activation squashed into [0, 1] by the logistic: 0.5 for one access a day ago,
    0 for none; more and more recent accesses push it towards 1."""
    b = actr_activation(access_times, now, decay)
    if b == -math.inf:
        return 0.0
    return 1.0 / (1.0 + math.exp(-b))


def hebbian_strengthen(weight: float, rate: float) -> float:
    """Co-retrieval: ``w ← w + η(1 - w)``; stays in [0, 1] and never overshoots 1."""
    w = min(1.0, max(0.0, weight))
    return min(1.0, w + rate * (1.0 - w))


def hebbian_decay(weight: float, elapsed: timedelta, tau_days: float) -> float:
    """``w·exp(-Δt/τ)``: monotone non-increasing in Δt (a negative Δt counts as none)."""
    days = max(0.0, elapsed.total_seconds() / _SECONDS_PER_DAY)
    return min(1.0, max(0.0, weight)) * math.exp(-days / tau_days)


def modulated_hebbian(weight: float, rate: float, modulator: float) -> float:
    """Reward-modulated Hebbian change between two rewarded co-retrieved memories.

    ``modulator`` is their mean prediction error in [-1, 1]: a positive one moves the weight
    towards 1 by ``η·m·(1 - w)``, a negative one towards 0 by ``η·|m|·w``; zero changes
    nothing. Both keep the weight in [0, 1].
    """
    w = min(1.0, max(0.0, weight))
    m = min(1.0, max(-1.0, modulator))
    if m >= 0:
        return min(1.0, w + rate * m * (1.0 - w))
    return max(0.0, w + rate * m * w)


def eligibility(access_times: Sequence[datetime], now: datetime, tau_hours: float) -> float:
    """Eligibility trace ``e = min(1, Σ_j exp(-Δt_j/τ))`` over the recent retrievals.

    A memory retrieved just now is fully eligible; one never retrieved is not eligible at
    all, so feedback cannot credit it.
    """
    total = 0.0
    for t in access_times:
        hours = max(0.0, (now - t).total_seconds() / 3600.0)
        total += math.exp(-hours / tau_hours)
    return min(1.0, total)


@dataclass(frozen=True, slots=True)
class ValueUpdate:
    value: float
    error: float  # δ = r - V before the update
    rewards: int  # how many rewards V has seen, this one included


def update_value(
    value: float,
    reward: float,
    rewards_seen: int,
    *,
    three_factor: bool,
    rate: float,
    trace: float,
) -> ValueUpdate:
    """One reward on a memory's learned value.

    Three-factor: ``δ = r - V``; ``V ← V + alpha·e·δ`` (dopamine-like error gated by the
    eligibility trace e). Without it, V is the plain running mean of the rewards. With
    ``δ = 0`` nothing changes, not even the count.
    """
    v = min(1.0, max(0.0, value))
    r = min(1.0, max(0.0, reward))
    delta = r - v
    if delta == 0.0:
        return ValueUpdate(v, 0.0, rewards_seen)
    if three_factor:
        new = v + rate * min(1.0, max(0.0, trace)) * delta
    else:
        new = v + delta / (rewards_seen + 1)
    return ValueUpdate(min(1.0, max(0.0, new)), delta, rewards_seen + 1)


def reward_rating_good(reward: float) -> bool:
    """Feedback as an FSRS review: a reward of at least 0.5 is Good, below it Again."""
    return reward >= 0.5


def is_labile(last_retrieved: datetime | None, now: datetime, window_hours: float) -> bool:
    """Retrieved within the last ``window_hours`` (reconsolidation window)."""
    if last_retrieved is None:
        return False
    age = (now - last_retrieved).total_seconds()
    return 0.0 <= age <= window_hours * 3600.0


Vec = npt.NDArray[np.float32]


def reconsolidate(memory: Vec, query: Vec, reward: float, rate: float, max_step: float) -> Vec:
    """Move a memory vector towards the query: step ``rate·r·(q - m)``, its norm capped at
    ``max_step``, the result renormalised to unit length (the index scores by cosine)."""
    m = np.asarray(memory, dtype=np.float64)
    q = np.asarray(query, dtype=np.float64)
    step = rate * max(0.0, min(1.0, reward)) * (q - m)
    norm = float(np.linalg.norm(step))
    if norm > max_step > 0:
        step *= max_step / norm
    elif max_step <= 0:
        step[:] = 0.0
    moved = m + step
    length = float(np.linalg.norm(moved))
    out = moved / length if length > 0 else m
    return out.astype(np.float32)


def query_weights(query: Vec, past: Sequence[Vec], similarity: float) -> npt.NDArray[np.float64]:
    """How much a rating given for each ``past`` query counts for ``query``: ``(cos - s) / (1
    - s)`` above the ``similarity`` s, 0 at or below it; 1 for the same query asked again.
    One matrix product for all of a recall's ratings: a Python loop over them cost more than
    the rest of the recall's learning features."""
    if not past:
        return np.zeros(0)
    q = np.asarray(query, dtype=np.float64)
    m = np.stack([np.asarray(v, dtype=np.float64) for v in past])
    norms = np.linalg.norm(m, axis=1) * float(np.linalg.norm(q))
    cos = np.divide(m @ q, norms, out=np.zeros(len(past)), where=norms > 0)
    weights: npt.NDArray[np.float64] = np.maximum(0.0, (cos - similarity) / (1.0 - similarity))
    return weights


def query_value(value: float, weighted: Sequence[tuple[float, float]], prior: float) -> float:
    """A memory's value for one query: its own value V pulled towards the rewards it got on
    past queries like this one, each ``(weight, reward)`` with its ``query_weights`` weight.

    The weighted mean ``(prior·V + Σ w·r) / (prior + Σ w)``: in [0, 1], and V itself when
    no weight is above 0. V belongs to the memory and moves a little with every rating,
    whatever was asked; a rating is also an answer about one question, and a question asked
    again (or nearly) should get that answer back at full strength.
    """
    v = min(1.0, max(0.0, value))
    total = sum(max(0.0, w) for w, _ in weighted)
    if total == 0.0:
        return v
    pulled = sum(max(0.0, w) * min(1.0, max(0.0, r)) for w, r in weighted)
    return min(1.0, max(0.0, (prior * v + pulled) / (prior + total)))
