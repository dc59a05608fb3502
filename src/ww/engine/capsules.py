"""Routing-by-agreement (capsule routing) of member vectors into one entity vector.

Sabour et al.'s dynamic routing sends each lower capsule's prediction to the parents that
agree with it. Consolidation has a single parent (the cluster's entity), so the softmax runs
over the members instead of over parents: members that agree with the emerging consensus
get more weight on the next iteration, and an outlier inside a cluster pulls the entity's
vector less than it would in a plain mean.

Per iteration r (b starts at 0):

    c = softmax(b)                    coupling of each member
    s = Σ c_i u_i                     weighted sum of member vectors
    v = squash(s) = |s|² / (1 + |s|²) · s / |s|
    b_i ← b_i + u_i · v               agreement of member i with the output

The entity vector is v / |v| (the index compares directions). The confidence is the
final couplings' weighted agreement Σ c_i cos(u_i, v), clipped to [0, 1]: 1 when every
member points the same way.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

__all__ = ["Routed", "mean_vector", "route_by_agreement", "squash"]

Matrix = npt.NDArray[np.float64]
Vec = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class Routed:
    vector: Vec
    """Unit-length entity vector."""
    confidence: float
    couplings: Vec
    """Final coupling of each member (sums to 1)."""


def squash(s: Vec) -> Vec:
    """Shrink a vector's length into [0, 1) keeping its direction: short vectors go to ~0,
    long ones to just under 1."""
    norm2 = float(s @ s)
    if norm2 == 0.0:
        return s.copy()
    out: Vec = (norm2 / (1.0 + norm2)) * s / np.sqrt(norm2)
    return out


def _unit(v: Vec) -> Vec:
    n = float(np.linalg.norm(v))
    return v / n if n > 0 else v


def _softmax(b: Vec) -> Vec:
    e = np.exp(b - b.max())
    out: Vec = e / e.sum()
    return out


def mean_vector(members: Matrix) -> Routed:
    """The plain alternative (flag off): the unit mean; confidence = mean cosine to it."""
    u = np.asarray(members, dtype=np.float64)
    u = u / np.maximum(np.linalg.norm(u, axis=1, keepdims=True), 1e-12)
    v = _unit(u.mean(axis=0))
    c = np.full(len(u), 1.0 / len(u))
    return Routed(v, float(np.clip(c @ (u @ v), 0.0, 1.0)), c)


def route_by_agreement(members: Matrix, iterations: int = 3) -> Routed:
    """Route ``members`` (one vector per row, normalised here) into one unit vector."""
    u = np.asarray(members, dtype=np.float64)
    if u.ndim != 2 or len(u) == 0:
        raise ValueError("members must be a non-empty 2-D array")
    if iterations < 1:
        raise ValueError("iterations must be at least 1")
    u = u / np.maximum(np.linalg.norm(u, axis=1, keepdims=True), 1e-12)
    b = np.zeros(len(u))
    for r in range(iterations):
        c = _softmax(b)
        v = squash(c @ u)
        if r < iterations - 1:
            b = b + u @ v
    direction = _unit(v)
    confidence = float(np.clip(c @ (u @ direction), 0.0, 1.0))
    return Routed(direction, confidence, c)
