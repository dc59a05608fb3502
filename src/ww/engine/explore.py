"""Reads for the explorer's Graph and Dynamics views, composed from the engines' stores.

Nothing here writes: reading a curve, a graph or a histogram never counts as an access and
never reviews a memory. Every read is bounded (a node limit, a cap on the episodes and
relations paged through), so a large session answers with part of itself and says so.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from uuid import UUID

import numpy as np
import numpy.typing as npt

from ww.engine.consolidation import Consolidator
from ww.engine.dynamics import Fsrs
from ww.models import EpisodeFilter, FSRSState
from ww.models.consolidation import DuplicateMerge
from ww.models.explorer import (
    CurvePoint,
    EntityGraph,
    Histogram,
    LastConsolidation,
    MemoryKind,
    MergedEntity,
    RetrievabilityCurve,
    SessionDistribution,
)
from ww.models.semantic import EntityFilter, Relation
from ww.storage.ports.consolidation import LinkType
from ww.storage.ports.learning import MemoryState

__all__ = [
    "DISTRIBUTION_CAP",
    "RELATION_CAP",
    "distribution",
    "entity_graph",
    "forgetting_curve",
    "histogram",
    "last_consolidation",
    "retrievability_curve",
]

_PAGE = 500
# Relations paged through to find those between the shown nodes.
RELATION_CAP = 20_000
# Live episodes read for the histograms.
DISTRIBUTION_CAP = 20_000
_MIN_STABILITY = 1e-3
_DAY = timedelta(days=1)


async def entity_graph(consolidator: Consolidator, session_id: str, limit: int) -> EntityGraph:
    """The newest ``limit`` current entities and the current relations between them."""
    store = consolidator.semantic.store
    page = await store.list_entities(session_id, EntityFilter(), limit, None)
    ids = {e.id for e in page.items}
    edges: list[Relation] = []
    cursor: str | None = None
    seen = 0
    while True:
        rels = await store.list_relations(session_id, _PAGE, cursor)
        seen += len(rels.items)
        edges += [
            r
            for r in rels.items
            if r.valid_to is None and r.source_id in ids and r.target_id in ids
        ]
        cursor = rels.next_cursor
        if cursor is None or seen >= RELATION_CAP:
            break
    return EntityGraph(
        nodes=page.items, edges=edges, truncated=page.next_cursor is not None or cursor is not None
    )


def forgetting_curve(
    fsrs: Fsrs, state: FSRSState, now: datetime, days: float, points: int
) -> list[CurvePoint]:
    """``points`` evenly spaced samples of the state's retrievability from its last review
    (or now, were the review in the future) to ``days`` after now."""
    start = min(state.last_review, now)
    end = now + days * _DAY
    span = (end - start) / _DAY
    offsets = np.linspace(0.0, span, points)
    since_review = offsets - (state.last_review - start) / _DAY
    r = fsrs.retrievability_many(np.full(points, state.stability), since_review)
    return [
        CurvePoint(at=start + float(o) * _DAY, retrievability=float(v))
        for o, v in zip(offsets, r, strict=True)
    ]


async def retrievability_curve(
    consolidator: Consolidator, session_id: str, memory_id: UUID, days: float, points: int
) -> RetrievabilityCurve | None:
    """The curve of an episode or an entity version of the session; None for neither."""
    engine, semantic = consolidator.engine, consolidator.semantic
    now = engine.clock()
    episode = await engine.get_episode(session_id, memory_id)
    if episode is not None:
        fsrs, state, kind = engine.fsrs, episode.fsrs, MemoryKind.EPISODE
        states = await engine.learning.memory_states(session_id, [memory_id])
        accesses = list(states.get(memory_id, MemoryState()).access_times)
    else:
        entity = await semantic.get(session_id, memory_id)
        if entity is None:
            return None
        fsrs, state, kind = semantic.fsrs, entity.fsrs, MemoryKind.ENTITY
        times = await semantic.store.access_times(session_id, [memory_id])
        accesses = sorted(times.get(memory_id, []))
    return RetrievabilityCurve(
        memory_id=memory_id,
        kind=kind,
        fsrs=state,
        now=now,
        retrievability=fsrs.retrievability(state, now),
        points=forgetting_curve(fsrs, state, now, days, points),
        accesses=accesses,
        formula=fsrs.formula,
    )


def histogram(values: npt.NDArray[np.float64], edges: npt.NDArray[np.float64]) -> Histogram:
    counts, _ = np.histogram(values, bins=edges)
    return Histogram(edges=[float(e) for e in edges], counts=[int(c) for c in counts])


def _stability_edges(stabilities: npt.NDArray[np.float64], bins: int) -> npt.NDArray[np.float64]:
    lo, hi = float(stabilities.min()), float(stabilities.max())
    if hi <= lo:
        # One value: a single bin around it (np.histogram needs increasing edges).
        return np.array([lo, lo * 2.0])
    return np.geomspace(lo, hi, bins + 1)


async def distribution(
    consolidator: Consolidator, session_id: str, bins: int
) -> SessionDistribution:
    """Histograms of the learned value and the FSRS stability of the live episodes."""
    engine = consolidator.engine
    values: list[float] = []
    stabilities: list[float] = []
    cursor: str | None = None
    truncated = False
    while True:
        page = await engine.list_episodes(session_id, EpisodeFilter(), _PAGE, cursor)
        values += [ep.value for ep in page.items]
        stabilities += [ep.fsrs.stability for ep in page.items]
        cursor = page.next_cursor
        if cursor is None:
            break
        if len(values) >= DISTRIBUTION_CAP:
            truncated = True
            break
    if not values:
        empty = Histogram(edges=[], counts=[])
        return SessionDistribution(episodes=0, truncated=False, value=empty, stability=empty)
    stab = np.maximum(np.array(stabilities), _MIN_STABILITY)
    return SessionDistribution(
        episodes=len(values),
        truncated=truncated,
        value=histogram(np.array(values), np.linspace(0.0, 1.0, bins + 1)),
        stability=histogram(stab, _stability_edges(stab, bins)),
    )


async def last_consolidation(consolidator: Consolidator, session_id: str) -> LastConsolidation:
    """What the session's last consolidation that merged anything wrote: the entities it
    made or updated with their members, and the near-duplicates it archived."""
    links = await consolidator.store.latest_links(session_id)
    members: dict[UUID, list[UUID]] = {}
    duplicates: list[DuplicateMerge] = []
    for k in links:
        if k.link_type is LinkType.CONSOLIDATED_INTO:
            members.setdefault(k.target_id, []).append(k.source_id)
        else:
            duplicates.append(DuplicateMerge(duplicate_id=k.source_id, original_id=k.target_id))
    found = await consolidator.semantic.store.get_entities(session_id, list(members))
    return LastConsolidation(
        at=links[0].created_at if links else None,
        entities=[
            MergedEntity(
                entity_id=e,
                name=found[e].name if e in found else None,
                members=m,
            )
            for e, m in members.items()
        ],
        duplicates=duplicates,
    )
