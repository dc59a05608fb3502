"""Pure formulas of semantic and procedural memory.

- ACT-R base-level activation ``B = ln Σ_j t_j^(-d)`` over a memory's recorded accesses
  (seconds since each, d = 0.5), and the matching retrieval probability
  ``P = 1 / (1 + exp(-(B - τ) / s))`` that puts it on the [0, 1] scale of the other features.
- Spreading activation over weighted relations: 1 at the seed, ``* weight * decay`` per hop,
  the best path wins, nothing below the threshold spreads further.
- The Beta(1, 1) posterior mean success rate ``(s + 1) / (s + f + 2)``.
- How-to confidence ``0.7 · similarity + 0.3 · success_rate``.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

__all__ = [
    "ACTR_DECAY",
    "ACTR_NOISE",
    "ACTR_THRESHOLD",
    "HOWTO_FORMULA",
    "HOWTO_SIMILARITY_WEIGHT",
    "Activation",
    "base_level",
    "base_level_probability",
    "beta_success_rate",
    "howto_confidence",
    "min_max",
    "spread_activation",
]

ACTR_DECAY = 0.5
# With d = 0.5 a single access t seconds ago gives B = -ln(t)/2, so τ = -5 puts one access
# e^10 s ≈ 6.1 h ago at P = 0.5; s = 1 is ACT-R's customary noise scale.
ACTR_THRESHOLD = -5.0
ACTR_NOISE = 1.0
# Accesses closer than a second count as one second: t^-d diverges at 0.
_MIN_AGE_SECONDS = 1.0

HOWTO_SIMILARITY_WEIGHT = 0.7
HOWTO_FORMULA = "confidence = 0.7 * similarity + 0.3 * success_rate"


def base_level(accesses: Iterable[datetime], now: datetime, decay: float = ACTR_DECAY) -> float:
    """ACT-R base level; ``-inf`` with no recorded access. Future accesses count as now."""
    total = 0.0
    for at in accesses:
        age = max(_MIN_AGE_SECONDS, (now - at).total_seconds())
        total += age ** (-decay)
    return math.log(total) if total > 0 else -math.inf


def base_level_probability(
    b: float, threshold: float = ACTR_THRESHOLD, noise: float = ACTR_NOISE
) -> float:
    """ACT-R retrieval probability of a memory with base level ``b``, in [0, 1]."""
    if b == -math.inf:
        return 0.0
    x = (b - threshold) / noise
    # Split by sign so exp never overflows.
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    e = math.exp(x)
    return e / (1.0 + e)


def beta_success_rate(successes: int, failures: int) -> float:
    """Posterior mean of a Beta(1, 1) prior after the given outcomes."""
    return (successes + 1) / (successes + failures + 2)


def howto_confidence(similarity: float, success_rate: float) -> float:
    sim = min(1.0, max(0.0, similarity))
    w = HOWTO_SIMILARITY_WEIGHT
    return w * sim + (1.0 - w) * min(1.0, max(0.0, success_rate))


@dataclass(frozen=True, slots=True)
class Activation:
    id: UUID
    activation: float
    path: tuple[UUID, ...]

    @property
    def depth(self) -> int:
        return len(self.path) - 1


Edges = Mapping[UUID, Sequence[tuple[UUID, float]]]


def spread_activation(
    seed: UUID,
    edges: Edges,
    *,
    depth: int,
    threshold: float,
    decay: float,
) -> dict[UUID, Activation]:
    """Activation reaching each node from ``seed`` within ``depth`` hops, the seed included.

    ``edges`` maps a node to its (neighbour, weight) pairs (the caller reads the subgraph
    within ``depth`` hops; edges are followed as given, so list both directions). Every
    factor is at most 1, so activation never grows along a path and the best path to a node
    is found first (a max-product Dijkstra). A node whose activation falls below
    ``threshold`` is not reported and does not spread. Ties go to the smaller id path, so
    the result is reproducible.
    """
    best: dict[UUID, Activation] = {seed: Activation(seed, 1.0, (seed,))}
    done: set[UUID] = set()
    heap: list[tuple[float, tuple[str, ...], UUID]] = [(-1.0, (str(seed),), seed)]
    while heap:
        _, _, node = heapq.heappop(heap)
        if node in done:
            continue
        done.add(node)
        current = best[node]
        if current.depth >= depth:
            continue
        for other, weight in edges.get(node, ()):
            if other in done:
                continue
            a = current.activation * max(0.0, min(1.0, weight)) * decay
            if a < threshold or a <= 0.0:
                continue
            known = best.get(other)
            path = (*current.path, other)
            if (
                known is None
                or a > known.activation
                or (a == known.activation and [str(p) for p in path] < [str(p) for p in known.path])
            ):
                best[other] = Activation(other, a, path)
                heapq.heappush(heap, (-a, tuple(str(p) for p in path), other))
    return best


def min_max(values: Mapping[UUID, float]) -> dict[UUID, float]:
    """Stretch to [0, 1] (bm25 has no fixed scale); one value or a flat set maps to 1.

    Stretching the candidates' range keeps a weak best keyword match from looking as strong
    as a decisive one relative to the rest; episode, entity and skill recall all use it."""
    if not values:
        return {}
    lo, hi = min(values.values()), max(values.values())
    span = hi - lo
    return {i: (v - lo) / span if span > 0 else 1.0 for i, v in values.items()}
