"""``/api/v1/graph`` and ``/api/v1/dynamics/*``: the reads the explorer's Graph and Dynamics
views draw. Read-only: none of them counts as an access or reviews a memory."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query

from ww.api.deps import SessionDep
from ww.api.routers.common import errors, found
from ww.api.routers.consolidate import ConsolidatorDep
from ww.engine import explore
from ww.models.explorer import (
    EntityGraph,
    LastConsolidation,
    RetrievabilityCurve,
    SessionDistribution,
)

__all__ = ["Bins", "Days", "NodeLimit", "Points", "router"]

router = APIRouter(prefix="/api/v1", tags=["explorer"], responses=errors())

NodeLimit = Annotated[int, Query(ge=1, le=1000, description="Most entities shown.")]
Days = Annotated[float, Query(gt=0, le=3650, description="How far after now the curve runs.")]
Points = Annotated[int, Query(ge=2, le=500, description="Samples on the curve.")]
Bins = Annotated[int, Query(ge=2, le=50, description="Bins per histogram.")]


@router.get("/graph", response_model=EntityGraph)
async def graph(
    consolidator: ConsolidatorDep, session: SessionDep, limit: NodeLimit = 200
) -> EntityGraph:
    """The session's newest ``limit`` current entities and the current relations between
    them, for drawing; ``truncated`` says the session holds more."""
    return await explore.entity_graph(consolidator, session, limit)


@router.get(
    "/dynamics/memories/{memory_id}/retrievability",
    response_model=RetrievabilityCurve,
    responses=errors(404),
)
async def retrievability(
    memory_id: UUID,
    consolidator: ConsolidatorDep,
    session: SessionDep,
    days: Days = 30.0,
    points: Points = 120,
) -> RetrievabilityCurve:
    """The FSRS-6 forgetting curve of an episode's or an entity version's stored state,
    from its last review to ``days`` after now, with its recorded retrievals. Computed by
    the engine's own formula, so the points match what recall uses."""
    curve = await explore.retrievability_curve(consolidator, session, memory_id, days, points)
    return found(curve, "memory")


@router.get("/dynamics/distribution", response_model=SessionDistribution)
async def distribution(
    session: SessionDep, consolidator: ConsolidatorDep, bins: Bins = 10
) -> SessionDistribution:
    """Histograms of the live episodes' learned values and FSRS stabilities."""
    return await explore.distribution(consolidator, session, bins)


@router.get("/dynamics/consolidation", response_model=LastConsolidation)
async def last_consolidation(
    consolidator: ConsolidatorDep, session: SessionDep
) -> LastConsolidation:
    """What the session's last consolidation that merged anything wrote: the entities it
    created or updated with their member episodes, and the near-duplicates it archived.
    A run that changed no membership leaves the previous answer in place."""
    return await explore.last_consolidation(consolidator, session)
