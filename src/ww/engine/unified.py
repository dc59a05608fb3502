"""Unified recall: one query over episodes, entities and skills, one fused ranking.

The query is embedded once and the vector is passed to each type's own recall, which keeps
its own candidates, features, filters and learning side effects. The types' scores are
made comparable by dividing each by the most its type's weights can give (the sum of the
weights): every feature is in [0, 1], so each type's normalised score is in [0, 1] and
reads as "the fraction of a perfect match of this type". Episode presets weigh more than 1
in total (the neighbour and speaker bonuses are added on top); entity and skill weights
sum to 1. Ties break on the type, then the id, so the ranking is reproducible.

Every hit carries a calibrated ``relevance`` (``ww.engine.relevance``): an episode's from its
own recall; an entity's or skill's computed the same way from its cosine (the ``semantic``
part) and the query's keyword coverage of its text. The coefficients were fitted on
episodes, so for entities and skills it is the same scale, not a separately fitted one.
``min_relevance`` drops hits of every type below it; the episode recall drops its own (so
it learns only from those kept), entity and skill hits are dropped here, after their
recalls have recorded the retrieval.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Protocol, TypeVar
from uuid import uuid4

from ww.engine.memory import MemoryEngine
from ww.engine.procedural import ProceduralMemory
from ww.engine.recall import PRESETS
from ww.engine.relevance import coverage, relevance
from ww.engine.semantic import SemanticMemory
from ww.models import Episode, MemoryType, RecallHit
from ww.models.kinds import KindRecallRequest
from ww.models.procedural import Skill, SkillHit, SkillRecallRequest
from ww.models.semantic import Entity, EntityHit, EntityRecallRequest
from ww.models.unified import UnifiedHit, UnifiedRecallRequest, UnifiedRecallResult
from ww.storage.diskspace import learning_skipped_when_full
from ww.storage.ports.learning import RecallLogEntry
from ww.storage.query_terms import keyword_terms
from ww.tracing import stage

__all__ = ["CUE_PARTS", "UnifiedRecall", "weight_total"]

_TYPE_ORDER = {MemoryType.EPISODE: 0, MemoryType.ENTITY: 1, MemoryType.SKILL: 2}
# What every kind's recall request has (the rest of each kind's fields are filters).
_SHARED = frozenset(KindRecallRequest.model_fields)
T = TypeVar("T")
H = TypeVar("H", bound=RecallHit | EntityHit | SkillHit)
H_co = TypeVar("H_co", covariant=True)


# The episode score parts that only a time cue in the query switches on.
CUE_PARTS = frozenset({"time", "newest"})


def weight_total(weights: Any, cue_parts: frozenset[str] = frozenset()) -> float:
    """The most a weighted sum of [0, 1] features can reach: the sum of its weights, the
    time-cue weights only for the cues the query has (``cue_parts``). Counting a cue the
    query lacks would shrink every episode's share beside entities and skills for a part
    that is 0 for all of them."""
    return float(
        sum(
            getattr(weights, f.name)
            for f in dataclasses.fields(weights)
            if f.name not in CUE_PARTS or f.name in cue_parts
        )
    )


def _normalised(score: float, total: float) -> float:
    return max(0.0, min(1.0, score / total)) if total > 0 else 0.0


class UnifiedRecall:
    def __init__(
        self, engine: MemoryEngine, semantic: SemanticMemory, procedural: ProceduralMemory
    ) -> None:
        self.engine = engine
        self.semantic = semantic
        self.procedural = procedural

    async def recall(self, session_id: str, req: UnifiedRecallRequest) -> UnifiedRecallResult:
        limits = {kind: req.limit_of(kind) for kind in MemoryType}
        with stage("embed"):
            qv = await self.engine.embedder.embed_one(req.query)

        async def nothing() -> None:
            return None

        def when(kind: MemoryType, call: Callable[[], Awaitable[T]]) -> Awaitable[T | None]:
            return call() if limits[kind] > 0 else nothing()

        def beside(
            kind: MemoryType, recall: Callable[..., Awaitable[T]], request: type[KindRecallRequest]
        ) -> Awaitable[T | None]:
            """An entity or skill recall of the query on the shared vector, logging nothing.
            The fields only that kind's request has are the unified request's of that name."""
            own = {f: getattr(req, f) for f in request.model_fields if f not in _SHARED}
            shared = {"query": req.query, "limit": limits[kind], "learn": req.learn}
            return when(
                kind,
                lambda: recall(
                    session_id, request(**shared, **own), query_vector=qv, log_recall=False
                ),
            )

        episodes, entities, skills = await asyncio.gather(
            when(
                MemoryType.EPISODE,
                lambda: self.engine.recall_episodes(
                    session_id,
                    req.query,
                    limit=limits[MemoryType.EPISODE],
                    flt=req.filters,
                    preset=req.preset,
                    learn=req.learn,
                    query_vector=qv,
                    log_recall=False,
                    at=req.at,
                    min_relevance=req.min_relevance,
                ),
            ),
            beside(MemoryType.ENTITY, self.semantic.recall, EntityRecallRequest),
            beside(MemoryType.SKILL, self.procedural.recall, SkillRecallRequest),
        )
        terms = keyword_terms(req.query)

        def kind_relevance(semantic: float, text: str) -> float:
            return relevance(semantic, coverage(terms, text))

        hits = [
            *_hits(
                MemoryType.EPISODE,
                episodes,
                PRESETS[req.preset],
                lambda h: (h.episode, h.relevance),
                episodes.cue_parts if episodes else frozenset(),
            ),
            *_hits(
                MemoryType.ENTITY,
                entities,
                self.semantic.weights,
                lambda h: (h.entity, kind_relevance(h.score_parts.semantic, h.entity.keyword_text)),
            ),
            *_hits(
                MemoryType.SKILL,
                skills,
                self.procedural.weights,
                lambda h: (h.skill, kind_relevance(h.score_parts.semantic, h.skill.keyword_text)),
            ),
        ]
        if req.min_relevance is not None:
            hits = [h for h in hits if h.relevance >= req.min_relevance]
        hits.sort(key=lambda h: (-h.score, _TYPE_ORDER[h.memory_type], str(h.id)))
        parts = [r for r in (episodes, entities, skills) if r is not None]
        # One log entry for every hit, in the fused order, so feedback (and its ``reward``
        # for everything returned) reaches each type; the per-type recalls logged nothing.
        recall_id = uuid4()
        if req.learn and hits:
            ids = tuple(h.id for h in hits)
            entry = RecallLogEntry(recall_id, session_id, self.engine.clock(), qv, ids)
            with learning_skipped_when_full():
                await self.engine.recall_learning.log(entry)
        return UnifiedRecallResult(
            recall_id=recall_id,
            query=req.query,
            hits=hits,
            counts={kind: sum(h.memory_type == kind for h in hits) for kind in MemoryType},
            degraded=any(r.degraded for r in parts),
        )


class _TypeResult(Protocol[H_co]):
    @property
    def hits(self) -> Sequence[H_co]: ...


def _hits(
    kind: MemoryType,
    result: _TypeResult[H] | None,
    weights: Any,
    memory: Callable[[H], tuple[Episode | Entity | Skill, float]],
    cue_parts: frozenset[str] = frozenset(),
) -> list[UnifiedHit]:
    """One type's hits with scores made comparable (see the module's docstring); ``memory``
    gives each hit's memory and relevance."""
    if result is None:
        return []
    total = weight_total(weights, cue_parts)
    out = []
    for h in result.hits:
        m, rel = memory(h)
        out.append(
            UnifiedHit(
                memory_type=kind,
                id=h.id,
                score=_normalised(h.score, total),
                type_score=h.score,
                score_parts=h.score_parts.model_dump(),
                relevance=rel,
                # Episodes carry the caller's id for them; other types have none.
                external_id=getattr(h, "external_id", None),
                memory=m,
            )
        )
    return out
