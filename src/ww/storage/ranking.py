"""One order for nearest-neighbour hits, whichever engine found them.

Equal scores are common in practice: episodes with the same text have the same vector. Each
Qdrant engine breaks such ties its own way (Qdrant Edge by internal offset, qdrant-client's
local mode by reversed insertion order), so the same data gave different answers on the two
tiers, and a tie across the ``limit`` cut even picked different memories. Every vector index
therefore returns hits by score, best first, then by id, and fetches past the cut until the
boundary score is complete.

Scores are compared at float32 precision, the precision Qdrant computes them in: local mode
scores in float64 through BLAS, which can give two identical vectors scores ~1e-16 apart.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import numpy as np

from ww.storage.ports import ScoredId

__all__ = ["top_hits"]


def _key(hit: ScoredId) -> tuple[float, int]:
    return (-hit.score, hit.id.int)


def _f32(hit: ScoredId) -> ScoredId:
    return ScoredId(hit.id, float(np.float32(hit.score)))


async def top_hits(fetch: Callable[[int], Awaitable[list[ScoredId]]], limit: int) -> list[ScoredId]:
    """The best ``limit`` hits in (score desc, id asc) order.

    ``fetch(n)`` returns the engine's top ``n`` hits in any order among equal scores. One more
    than ``limit`` is fetched; only when that extra hit ties the last kept one is the fetch
    repeated, with twice as many, until a lower score (or the end of the matches) shows that
    every hit of the boundary score is in hand.
    """
    if limit <= 0:
        return []
    n = limit + 1
    while True:
        hits = sorted(map(_f32, await fetch(n)), key=_key)
        if len(hits) < n or hits[-1].score != hits[limit - 1].score:
            return hits[:limit]
        n *= 2
