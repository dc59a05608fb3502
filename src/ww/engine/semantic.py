"""SemanticMemory: entities, their bi-temporal versions, relations, recall and spreading
activation. Same write protocol as episodes: record pending -> vector upserted -> indexed."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from uuid import UUID, uuid4

from ww.engine.activation import (
    base_level,
    base_level_probability,
    spread_activation,
)
from ww.engine.dynamics import ReviewRating
from ww.engine.kind_memory import Beside, StoredKind
from ww.engine.kinds import candidates, fill_cosine
from ww.models import EpisodeFilter, MemoryType
from ww.models.semantic import (
    ActivatedEntity,
    Entity,
    EntityCreate,
    EntityFilter,
    EntityHit,
    EntityRecallRequest,
    EntityRecallResult,
    EntityScoreParts,
    EntitySupersede,
    EntityUpdate,
    Relation,
    RelationCreate,
    SpreadRequest,
    SpreadResult,
)
from ww.storage.diskspace import learning_skipped_when_full
from ww.storage.memory_payload import entity_payload, entity_type_key
from ww.storage.ports import ScoredId, StoreUnavailableError, Vector, VectorIndex
from ww.storage.ports.entities import EntityAccess, EntityStore

__all__ = [
    "ENTITY_WEIGHTS",
    "ClosedEndError",
    "EntityWeights",
    "InvalidSupersedeError",
    "SemanticMemory",
]

log = logging.getLogger(__name__)

# Recall with ``as_of`` restricts the vector search to the ids valid then when there are at
# most this many; beyond that it over-fetches and filters in the record store.
_WITHIN_CAP = 2000
_OVERFETCH = 4
# Spreading activation during recall: from the best few candidates, two hops.
_SPREAD_SEEDS = 3
_SPREAD_DEPTH = 2
_SPREAD_DECAY = 0.8
_SPREAD_THRESHOLD = 0.05


class InvalidSupersedeError(ValueError):
    """The successor cannot start before (or when) the version it replaces started."""


class ClosedEndError(RuntimeError):
    """A relation end is a superseded (closed) version; ``field`` names which end."""

    def __init__(self, field: str, entity_id: UUID) -> None:
        super().__init__(f"{field} {entity_id} is a superseded version; relate the current version")
        self.field = field


@dataclass(frozen=True, slots=True)
class EntityWeights:
    semantic: float = 0.55
    keyword: float = 0.20
    base_level: float = 0.10
    retrievability: float = 0.05
    spread: float = 0.10


ENTITY_WEIGHTS = EntityWeights()


class SemanticMemory(StoredKind[Entity, EntityFilter]):
    store: EntityStore

    def __init__(
        self,
        *,
        store: EntityStore,
        vectors: VectorIndex,
        beside: Beside,
        weights: EntityWeights = ENTITY_WEIGHTS,
    ) -> None:
        super().__init__(
            name="entities",
            store=store,
            vectors=vectors,
            beside=beside,
            text=lambda e: e.embed_text,
            payload=entity_payload,
            pending=store.pending_entities,
            kind=MemoryType.ENTITY,
            insert=store.insert_entity,
            page=store.list_entities,
            load=store.get_entities,
            save_one=store.update_entity,
        )
        self.weights = weights

    # -- entities ---------------------------------------------------------------------------
    async def create(self, session_id: str, body: EntityCreate) -> Entity:
        now = self.clock()
        ident = uuid4()
        entity = Entity(
            **body.model_dump(exclude={"valid_from"}),
            id=ident,
            session_id=session_id,
            lineage_id=ident,
            version=1,
            valid_from=body.valid_from or now,
            created_at=now,
            fsrs=self.fsrs.new_state(now),
        )
        return await self._create(session_id, entity, now)

    async def get(self, session_id: str, entity_id: UUID) -> Entity | None:
        return await self.store.get_entity(session_id, entity_id)

    async def update(self, session_id: str, entity_id: UUID, patch: EntityUpdate) -> Entity | None:
        current = await self.store.get_entity(session_id, entity_id)
        if current is None:
            return None
        updated = current.model_validate(
            {**current.model_dump(), **patch.model_dump(exclude_unset=True)}
        )
        return await self.writes.rewrite(session_id, current, updated, self.store.update_entity)

    async def supersede(
        self, session_id: str, entity_id: UUID, body: EntitySupersede
    ) -> Entity | None:
        """The new version, or None when ``entity_id`` is unknown; raises
        ``VersionClosedError`` when it is already closed."""
        old = await self.store.get_entity(session_id, entity_id)
        if old is None:
            return None
        now = self.clock()
        valid_from = body.valid_from or now
        if valid_from <= old.valid_from:
            raise InvalidSupersedeError(
                f"valid_from {valid_from.isoformat()} must be after the replaced version's "
                f"valid_from {old.valid_from.isoformat()}"
            )
        changes = body.model_dump(exclude_unset=True, exclude={"valid_from"})
        new = Entity(
            **{
                **old.model_dump(include={"name", "entity_type", "summary", "details", "source"}),
                **changes,
            },
            id=uuid4(),
            session_id=session_id,
            lineage_id=old.lineage_id,
            version=old.version + 1,
            valid_from=valid_from,
            created_at=now,
            fsrs=self.fsrs.new_state(now),
        )
        vectors = await self.writes.embed([new], fresh=True)
        try:
            closed = await self.store.supersede_entity(session_id, entity_id, new)
        except KeyError:
            return None  # deleted meanwhile
        await self.writes.sync_payload(session_id, closed)
        return (await self.writes.index(session_id, [new], vectors))[0]

    async def history(self, session_id: str, entity_id: UUID) -> list[Entity] | None:
        entity = await self.store.get_entity(session_id, entity_id)
        if entity is None:
            return None
        return await self.store.history(session_id, entity.lineage_id)

    async def delete(self, session_id: str, entity_id: UUID) -> bool:
        if await self.store.get_entity(session_id, entity_id) is None:
            return False
        return await self.writes.delete(session_id, entity_id, self.store.delete_entity)

    # -- relations --------------------------------------------------------------------------
    async def relate(
        self, session_id: str, source_id: UUID, body: RelationCreate
    ) -> Relation | None:
        """None when either end is unknown; a self-relation is a ``ValueError``; an end that
        is a closed version raises ``ClosedEndError``. Relations belong to the current graph
        (supersede moves them to the new version), so one from a closed version would be
        invisible to spreading and lost from history alike."""
        if source_id == body.target_id:
            raise ValueError("an entity cannot be related to itself")
        ends = await self.store.get_entities(session_id, [source_id, body.target_id])
        if len(ends) != 2:
            return None
        for field, ident in (("source_id", source_id), ("target_id", body.target_id)):
            if ends[ident].valid_to is not None:
                raise ClosedEndError(field, ident)
        now = self.clock()
        relation = Relation(
            id=uuid4(),
            session_id=session_id,
            source_id=source_id,
            target_id=body.target_id,
            relation_type=body.relation_type,
            weight=body.weight,
            created_at=now,
            last_strengthened=now,
            valid_from=now,
        )
        await self.store.insert_relation(session_id, relation)
        return relation

    async def relations(self, session_id: str, entity_id: UUID) -> list[Relation] | None:
        if await self.store.get_entity(session_id, entity_id) is None:
            return None
        return await self.store.relations_of(session_id, entity_id)

    async def unrelate(self, session_id: str, entity_id: UUID, relation_id: UUID) -> bool:
        relation = await self.store.get_relation(session_id, relation_id)
        if relation is None or entity_id not in (relation.source_id, relation.target_id):
            return False
        return await self.store.delete_relation(session_id, relation_id)

    async def _subgraph(
        self, session_id: str, seeds: Sequence[UUID], depth: int
    ) -> dict[UUID, list[tuple[UUID, float]]]:
        """Edges of every node within ``depth - 1`` hops of the seeds, both directions."""
        edges: dict[UUID, list[tuple[UUID, float]]] = {}
        frontier = list(dict.fromkeys(seeds))
        for _ in range(depth):
            if not frontier:
                break
            found = await self.store.adjacency(session_id, frontier)
            edges.update(found)
            frontier = [n for pairs in found.values() for n, _ in pairs if n not in edges]
            frontier = list(dict.fromkeys(frontier))
        return edges

    async def spread(self, session_id: str, req: SpreadRequest) -> SpreadResult | None:
        if await self.store.get_entity(session_id, req.seed_id) is None:
            return None
        edges = await self._subgraph(session_id, [req.seed_id], req.depth)
        reached = spread_activation(
            req.seed_id, edges, depth=req.depth, threshold=req.threshold, decay=req.decay
        )
        ranked = sorted(
            (a for a in reached.values() if a.id != req.seed_id),
            key=lambda a: (-a.activation, str(a.id)),
        )[: req.limit]
        entities = await self.store.get_entities(session_id, [a.id for a in ranked])
        return SpreadResult(
            seed_id=req.seed_id,
            activated=[
                ActivatedEntity(
                    entity_id=a.id,
                    activation=a.activation,
                    depth=a.depth,
                    path=list(a.path),
                    entity=entities[a.id],
                )
                for a in ranked
                if a.id in entities
            ],
        )

    # -- recall -----------------------------------------------------------------------------
    async def _dense(
        self, session_id: str, vector: Vector, flt: EntityFilter, n: int
    ) -> list[ScoredId] | None:
        type_key = entity_type_key(flt.entity_type)
        try:
            if flt.as_of is None and not flt.include_closed:
                # Current versions of a type: both filters run inside the index.
                current = EpisodeFilter(project=type_key, include_archived=False)
                return await self.vectors.search(session_id, vector, current, n)
            anyv = EpisodeFilter(project=type_key, include_archived=True)
            allowed = await self.store.matching_ids(session_id, flt, _WITHIN_CAP)
            if allowed is not None:
                return await self.vectors.search(session_id, vector, anyv, n, within=allowed)
            hits = await self.vectors.search(session_id, vector, anyv, n * _OVERFETCH)
            keep = await self.store.filter_ids(session_id, [h.id for h in hits], flt)
            return [h for h in hits if h.id in keep][:n]
        except StoreUnavailableError as exc:
            log.warning("entity recall degraded to keyword only: %s", exc)
            return None

    async def recall(
        self,
        session_id: str,
        req: EntityRecallRequest,
        query_vector: Vector | None = None,
        *,
        log_recall: bool = True,
    ) -> EntityRecallResult:
        flt = EntityFilter(entity_type=req.entity_type, as_of=req.as_of)
        now = self.clock()
        n = max(self.candidates, req.limit)
        # Unified recall embeds the query once and passes the vector down.
        qv = query_vector if query_vector is not None else await self.embedder.embed_one(req.query)
        found = await candidates(
            self.vectors,
            session_id,
            qv,
            await self._dense(session_id, qv, flt, n),
            await self.store.keyword_search(session_id, req.query, flt, n),
        )
        cosine, kw, ids = found.cosine, found.keyword, found.ids
        entities = await self.store.get_entities(session_id, ids)
        times = await self.store.access_times(session_id, ids)
        w = self.weights

        def base(i: UUID) -> tuple[float, float, float]:
            bl = base_level_probability(base_level(times.get(i, []), now))
            r = self.fsrs.retrievability(entities[i].fsrs, now)
            score = (
                w.semantic * max(0.0, min(1.0, cosine.get(i, 0.0)))
                + w.keyword * kw.get(i, 0.0)
                + w.base_level * bl
                + w.retrievability * r
            )
            return score, bl, r

        scored = {i: base(i) for i in ids if i in entities}
        spread: dict[UUID, float] = {}
        degraded = found.degraded
        if req.as_of is None and scored:
            # Associations run over the current graph, so only current-version recall uses
            # them; graph neighbours of the best seeds become candidates themselves.
            seeds = sorted(scored, key=lambda i: (-scored[i][0], str(i)))[:_SPREAD_SEEDS]
            edges = await self._subgraph(session_id, seeds, _SPREAD_DEPTH)
            for s in seeds:
                reached = spread_activation(
                    s,
                    edges,
                    depth=_SPREAD_DEPTH,
                    threshold=_SPREAD_THRESHOLD,
                    decay=_SPREAD_DECAY,
                )
                for a in reached.values():
                    if a.id != s:
                        spread[a.id] = max(spread.get(a.id, 0.0), a.activation)
            extra = [i for i in spread if i not in scored]
            if extra:
                keep = await self.store.filter_ids(session_id, extra, flt)
                extra = [i for i in extra if i in keep]
                entities.update(await self.store.get_entities(session_id, extra))
                times.update(await self.store.access_times(session_id, extra))
                # Reached entities the index cannot score rank without their cosine, and
                # the recall says so, as the candidates step does (kinds.candidates).
                if not await fill_cosine(self.vectors, session_id, qv, extra, cosine):
                    degraded = True
                scored.update({i: base(i) for i in extra if i in entities})
        ranked = sorted(
            scored, key=lambda i: (-(scored[i][0] + w.spread * spread.get(i, 0.0)), str(i))
        )[: req.limit]
        hits = [
            EntityHit(
                id=i,
                score=scored[i][0] + w.spread * spread.get(i, 0.0),
                score_parts=EntityScoreParts(
                    semantic=max(0.0, min(1.0, cosine.get(i, 0.0))),
                    keyword=kw.get(i, 0.0),
                    base_level=scored[i][1],
                    retrievability=scored[i][2],
                    spread=spread.get(i, 0.0),
                ),
                entity=entities[i],
            )
            for i in ranked
        ]
        result = EntityRecallResult(
            recall_id=uuid4(), query=req.query, hits=hits, degraded=degraded
        )
        if req.learn:
            with learning_skipped_when_full():
                if hits:
                    updates = [
                        EntityAccess(
                            id=h.id,
                            fsrs=self.fsrs.review(h.entity.fsrs, ReviewRating.GOOD, now),
                            access_count=h.entity.access_count + 1,
                            last_accessed=now,
                        )
                        for h in hits
                    ]
                    await self.store.record_access(session_id, updates, now)
                await self._after_recall(session_id, result.recall_id, qv, hits, now, log_recall)
        return result
