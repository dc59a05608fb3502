"""Consolidation ("sleep") of one session at a time.

Steps, in order, each optional:

1. **Near-duplicate merge** — live episodes with cosine ≥ 0.97 and the same speaker: the
   newer one is archived (never deleted) and linked ``DUPLICATE_OF`` the oldest.
2. **Archiving** — live episodes whose FSRS retrievability *and* importance are both below
   their thresholds are archived (``PATCH archived=false`` restores them).
3. **Clustering** — HDBSCAN (scikit-learn) over the remaining live episodes' vectors; each
   cluster becomes a CONCEPT entity named after the cluster's distinctive terms, summarised
   by its medoid episode, with a vector routed by agreement over its members (or their
   mean, flag ``capsule_encoding`` off), linked ``CONSOLIDATED_INTO`` from every member.
   A cluster with exactly the members of an earlier consolidated entity changes nothing;
   one that mostly overlaps one (Jaccard ≥ 0.5) updates it; others create new entities.
4. **Hebbian decay** — relation weights decay as w·exp(-Δt/τ) since they last changed and
   relations that fall below the prune threshold are closed (valid_to), not deleted.

Safe while requests are served: reads go page by page, numeric work runs on a worker
thread, every write is a short transaction through the normal engine paths, and a
per-session lock keeps the scheduler and the API from consolidating a session twice at
once. Deterministic given the stores and the clock (entity ids are derived from the
session and the cluster's first membership).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import math
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID, uuid5

import numpy as np
import numpy.typing as npt

from ww.control.flags import Flags
from ww.embedding import EmbeddingError
from ww.engine.capsules import Routed, mean_vector, route_by_agreement
from ww.engine.consolidation_text import distinctive_terms, medoid, tokens
from ww.engine.memory import MemoryEngine
from ww.engine.periodic import Periodic
from ww.engine.semantic import SemanticMemory
from ww.models import Episode, EpisodeFilter, EpisodeUpdate, IndexState
from ww.models.consolidation import (
    ConsolidatedEntityReport,
    ConsolidationOptions,
    ConsolidationReport,
    DuplicateMerge,
)
from ww.models.semantic import Entity, EntityType
from ww.storage.ports import StoreUnavailableError
from ww.storage.ports.consolidation import (
    ConsolidatedEntity,
    ConsolidationStore,
    EdgeDecay,
    LinkType,
    MemoryLink,
)

__all__ = ["ConsolidationScheduler", "Consolidator", "EpisodeEdgeDecay"]

log = logging.getLogger(__name__)

Matrix = npt.NDArray[np.float64]
# Hook for Hebbian edges between episodes (CO_RETRIEVED), owned by the learning engine:
# (session, now, tau_days, prune_below, dry_run) -> (decayed, pruned).
EpisodeEdgeDecay = Callable[[str, datetime, float, float, bool], Awaitable[tuple[int, int]]]

_PAGE = 256
_EDGE_PAGE = 500
_DAY_S = 86_400.0
# A decay smaller than this is not written; the interval keeps accumulating instead, so a
# rerun moments later changes nothing.
_MIN_DECAY = 1e-4
_MATCH_JACCARD = 0.5
_NAMESPACE = UUID("6f7a3c2e-9b1d-4e5f-8a6b-2c3d4e5f6a7b")


@dataclass(frozen=True, slots=True)
class _Live:
    """The session's live episodes (oldest first) with their unit vectors."""

    episodes: list[Episode]
    vectors: Matrix


def _order(ep: Episode) -> tuple[datetime, datetime, str]:
    return (ep.timestamp, ep.ingested_at, str(ep.id))


def _members_hash(ids: Sequence[UUID]) -> str:
    return hashlib.sha256(",".join(sorted(str(i) for i in ids)).encode()).hexdigest()[:32]


def find_duplicates(
    episodes: Sequence[Episode], vectors: Matrix, threshold: float
) -> dict[int, int]:
    """Newer index -> the oldest earlier index it nearly duplicates (same speaker, cosine at
    or above ``threshold``). ``episodes`` are oldest first; a duplicate is never an original."""
    out: dict[int, int] = {}
    n = len(episodes)
    for start in range(0, n, 512):
        block = vectors[start : start + 512] @ vectors[: start + 512].T
        for r, row in enumerate(block):
            j = start + r
            for found in np.flatnonzero(row[:j] >= threshold):
                i = int(found)
                if i not in out and episodes[i].speaker == episodes[j].speaker:
                    out[j] = i
                    break
    return out


def cluster_labels(vectors: Matrix, min_cluster_size: int, min_samples: int | None) -> list[int]:
    """HDBSCAN labels (-1: noise). On unit vectors euclidean distance is monotone in cosine."""
    if len(vectors) < max(min_cluster_size, 2):
        return [-1] * len(vectors)
    from sklearn.cluster import HDBSCAN  # imported on first use: it loads scipy (slow)

    model = HDBSCAN(
        min_cluster_size=min_cluster_size,
        min_samples=min_samples,
        metric="euclidean",
        copy=True,
    )
    return [int(x) for x in model.fit_predict(vectors)]


class Consolidator:
    def __init__(
        self,
        engine: MemoryEngine,
        semantic: SemanticMemory,
        store: ConsolidationStore,
        *,
        flags: Callable[[], Flags] | None = None,
        episode_edge_decay: EpisodeEdgeDecay | None = None,
    ) -> None:
        self.engine = engine
        self.semantic = semantic
        self.store = store
        # By default the engine's flags, read at each pass: the flags given to build_engine,
        # never a second reading of the environment.
        self.flags = flags if flags is not None else lambda: engine.flags
        self.episode_edge_decay = episode_edge_decay
        self._locks: dict[str, asyncio.Lock] = {}

    async def links(self, session_id: str, memory_id: UUID) -> list[MemoryLink]:
        return await self.store.links(session_id, memory_id)

    async def delete_session(self, session_id: str) -> None:
        await self.store.delete_session(session_id)

    async def consolidate(
        self, session_id: str, options: ConsolidationOptions | None = None
    ) -> ConsolidationReport:
        opts = options or ConsolidationOptions()
        lock = self._locks.setdefault(session_id, asyncio.Lock())
        async with lock:
            return await self._run(session_id, opts)

    async def _run(self, session_id: str, opts: ConsolidationOptions) -> ConsolidationReport:
        now = self.engine.clock()
        capsules = self.flags().capsule_encoding
        live = await self._live(session_id, opts.max_episodes)
        keep = np.ones(len(live.episodes), dtype=bool)
        merges: list[DuplicateMerge] = []
        archived: list[UUID] = []
        if opts.merge_duplicates and live.episodes:
            dups = await asyncio.to_thread(
                find_duplicates, live.episodes, live.vectors, opts.duplicate_threshold
            )
            for j, i in sorted(dups.items()):
                keep[j] = False
                merges.append(
                    DuplicateMerge(
                        duplicate_id=live.episodes[j].id, original_id=live.episodes[i].id
                    )
                )
        if opts.archive:
            fsrs = self.engine.fsrs
            for k, ep in enumerate(live.episodes):
                if (
                    keep[k]
                    and ep.importance < opts.archive_importance_below
                    and fsrs.retrievability(ep.fsrs, now) < opts.archive_retrievability_below
                ):
                    keep[k] = False
                    archived.append(ep.id)
        if not opts.dry_run:
            await self._archive(session_id, merges, archived, now)
        entities: list[ConsolidatedEntityReport] = []
        clusters = 0
        if opts.cluster:
            episodes = [ep for k, ep in enumerate(live.episodes) if keep[k]]
            vectors = live.vectors[keep]
            clusters, entities = await self._cluster(
                session_id, episodes, vectors, opts, capsules, now
            )
        decayed = pruned = ep_decayed = ep_pruned = 0
        if opts.decay:
            decayed, pruned = await self._decay(session_id, opts, now)
            if self.episode_edge_decay is not None:
                ep_decayed, ep_pruned = await self.episode_edge_decay(
                    session_id, now, opts.decay_tau_days, opts.prune_below, opts.dry_run
                )
        created = sum(e.action == "created" for e in entities)
        updated = sum(e.action == "updated" for e in entities)
        changed = bool(
            created or updated or merges or archived or decayed or pruned or ep_decayed or ep_pruned
        )
        return ConsolidationReport(
            session_id=session_id,
            dry_run=opts.dry_run,
            at=now,
            capsule_encoding=capsules,
            episodes_considered=len(live.episodes),
            clusters=clusters,
            entities_created=created,
            entities_updated=updated,
            entities_unchanged=len(entities) - created - updated,
            entities=entities,
            duplicates_merged=merges,
            edges_decayed=decayed,
            edges_pruned=pruned,
            episode_edges_decayed=ep_decayed,
            episode_edges_pruned=ep_pruned,
            archived=archived,
            changed=changed,
        )

    # -- reading ----------------------------------------------------------------------------
    async def _live(self, session_id: str, cap: int) -> _Live:
        """The newest ``cap`` live, indexed episodes, oldest first, with unit vectors.
        Read page by page so no read holds the database for long."""
        found: list[Episode] = []
        cursor: str | None = None
        while len(found) < cap:
            page = await self.engine.list_episodes(
                session_id, EpisodeFilter(), min(_PAGE, cap - len(found)), cursor
            )
            found += page.items
            cursor = page.next_cursor
            if cursor is None:
                break
        vectors: dict[UUID, npt.NDArray[np.float32]] = {}
        for start in range(0, len(found), _PAGE):
            ids = [ep.id for ep in found[start : start + _PAGE]]
            vectors.update(await self.engine.vectors.get_vectors(session_id, ids))
        # Pending episodes have no vector yet: the next run sees them.
        episodes = sorted((ep for ep in found if ep.id in vectors), key=_order)
        if not episodes:
            return _Live([], np.zeros((0, self.engine.vectors.dimension)))
        m = np.stack([vectors[ep.id].astype(np.float64) for ep in episodes])
        m /= np.maximum(np.linalg.norm(m, axis=1, keepdims=True), 1e-12)
        return _Live(episodes, m)

    # -- archiving --------------------------------------------------------------------------
    async def _archive(
        self,
        session_id: str,
        merges: Sequence[DuplicateMerge],
        archived: Sequence[UUID],
        now: datetime,
    ) -> None:
        patch = EpisodeUpdate(archived=True)
        for m in merges:
            # Link first: an archived duplicate is never left without its original.
            link = MemoryLink(m.duplicate_id, m.original_id, LinkType.DUPLICATE_OF, now)
            await self.store.add_links(session_id, [link])
            await self.engine.update_episode(session_id, m.duplicate_id, patch)
        for episode_id in archived:
            await self.engine.update_episode(session_id, episode_id, patch)

    # -- clustering -------------------------------------------------------------------------
    async def _cluster(
        self,
        session_id: str,
        episodes: list[Episode],
        vectors: Matrix,
        opts: ConsolidationOptions,
        capsules: bool,
        now: datetime,
    ) -> tuple[int, list[ConsolidatedEntityReport]]:
        labels = await asyncio.to_thread(
            cluster_labels, vectors, opts.min_cluster_size, opts.min_samples
        )
        groups: dict[int, list[int]] = {}
        for k, label in enumerate(labels):
            if label >= 0:
                groups.setdefault(label, []).append(k)
        if not groups:
            return 0, []
        session_df = Counter(t for ep in episodes for t in tokens(ep.content))
        existing = await self.store.consolidated(session_id)
        used: set[UUID] = set()
        reports = []
        # Clusters in order of their oldest member, so matching is reproducible.
        for members in sorted(groups.values(), key=lambda g: g[0]):
            ids = [episodes[k].id for k in members]
            digest = _members_hash(ids)
            match = _match(existing, frozenset(ids), digest, used)
            if match is not None:
                used.add(match.entity_id)
            if match is not None and match.members_hash == digest:
                entity = await self.semantic.store.get_entity(session_id, match.entity_id)
                name = entity.name if entity else ""
                reports.append(
                    ConsolidatedEntityReport(
                        entity_id=match.entity_id,
                        name=name,
                        members=ids,
                        confidence=match.confidence,
                        action="unchanged",
                    )
                )
                continue
            member_vectors = vectors[members]
            routed = await asyncio.to_thread(
                route_by_agreement if capsules else mean_vector, member_vectors
            )
            texts = [episodes[k].content for k in members]
            name = " ".join(distinctive_terms(texts, session_df, len(episodes))) or "topic"
            summary = texts[medoid(member_vectors)]
            entity_id = match.entity_id if match else await self._new_id(session_id, digest)
            if not opts.dry_run:
                await self._write_entity(
                    session_id, entity_id, match is None, name, summary, len(ids), routed, now
                )
                await self.store.save_consolidated(
                    session_id,
                    ConsolidatedEntity(entity_id, digest, frozenset(ids), routed.confidence),
                    now,
                )
            reports.append(
                ConsolidatedEntityReport(
                    entity_id=entity_id,
                    name=name,
                    members=ids,
                    confidence=routed.confidence,
                    action="created" if match is None else "updated",
                )
            )
        return len(groups), reports

    async def _new_id(self, session_id: str, digest: str) -> UUID:
        """Derived from the session and the membership, so a rerun from the same state makes
        the same ids; a suffix skips an id an earlier entity (since updated) still holds."""
        for n in range(100):
            candidate = uuid5(_NAMESPACE, f"{session_id}:{digest}:{n}")
            if not await self.semantic.store.existing_ids(session_id, [candidate]):
                return candidate
        raise RuntimeError("no free consolidated entity id")  # pragma: no cover

    async def _write_entity(
        self,
        session_id: str,
        entity_id: UUID,
        new: bool,
        name: str,
        summary: str,
        size: int,
        routed: Routed,
        now: datetime,
    ) -> None:
        store = self.semantic.store
        details = f"Consolidated from {size} episodes (confidence {routed.confidence:.3f})."
        current = None if new else await store.get_entity(session_id, entity_id)
        if current is None:
            entity = Entity(
                id=entity_id,
                session_id=session_id,
                lineage_id=entity_id,
                version=1,
                name=name[:512],
                entity_type=EntityType.CONCEPT,
                summary=summary,
                details=details,
                source="consolidation",
                valid_from=now,
                created_at=now,
                fsrs=self.semantic.fsrs.new_state(now),
            )
            await self.engine.records.ensure_session(session_id, now)
            await store.insert_entity(session_id, entity)
        else:
            entity = current.model_copy(
                update={
                    "name": name[:512],
                    "summary": summary,
                    "details": details,
                    "index_state": IndexState.PENDING,
                }
            )
            await store.update_entity(session_id, entity)
        # The routed vector, not an embedding of the name and summary: it stands for the
        # members. If the index is down the reconciler embeds the text instead.
        # A long summary's further windows still become parts, so all of it is searchable.
        writes = self.semantic.writes
        try:
            # The entity is committed pending: if its parts cannot be embedded (the model or
            # its circuit down) the reconciler indexes it later, and the pass goes on.
            embedded = await writes.parts([entity], [routed.vector.astype(np.float32)])
            await self.semantic.vectors.upsert(session_id, writes.items([entity], embedded))
            await store.mark_indexed(session_id, [entity.id])
        except (StoreUnavailableError, EmbeddingError) as exc:
            log.warning("entity %s left pending, not indexed: %s", entity.id, exc)

    # -- Hebbian decay ----------------------------------------------------------------------
    async def _decay(
        self, session_id: str, opts: ConsolidationOptions, now: datetime
    ) -> tuple[int, int]:
        decayed = pruned = 0
        after: UUID | None = None
        while edges := await self.store.edges(session_id, after, _EDGE_PAGE):
            after = edges[-1].id
            changes = []
            for e in edges:
                days = (now - e.since).total_seconds() / _DAY_S
                if days <= 0:
                    continue
                w = e.weight * math.exp(-days / opts.decay_tau_days)
                if w < opts.prune_below:
                    changes.append(EdgeDecay(e.id, w, pruned=True))
                elif e.weight - w >= _MIN_DECAY:
                    changes.append(EdgeDecay(e.id, w, pruned=False))
            pruned += sum(c.pruned for c in changes)
            decayed += sum(not c.pruned for c in changes)
            if changes and not opts.dry_run:
                await self.store.decay_edges(session_id, changes, now)
        return decayed, pruned


def _match(
    existing: Sequence[ConsolidatedEntity],
    members: frozenset[UUID],
    digest: str,
    used: set[UUID],
) -> ConsolidatedEntity | None:
    """The earlier consolidated entity this cluster continues: the same members, or else the
    best overlap (Jaccard ≥ 0.5) among those not yet claimed; ties go to the smaller id."""
    for e in existing:
        if e.members_hash == digest and e.entity_id not in used:
            return e
    best: tuple[float, str, ConsolidatedEntity] | None = None
    for e in existing:
        if e.entity_id in used or not e.members:
            continue
        jaccard = len(e.members & members) / len(e.members | members)
        if jaccard >= _MATCH_JACCARD and (
            best is None or (-jaccard, str(e.entity_id)) < (-best[0], best[1])
        ):
            best = (jaccard, str(e.entity_id), e)
    return best[2] if best else None


class ConsolidationScheduler(Periodic):
    """Consolidates every session every ``interval_s`` seconds (``WW_CONSOLIDATION_INTERVAL``)."""

    _log = log
    _what = "consolidation"

    def __init__(
        self,
        consolidator: Consolidator,
        interval_s: float,
        leader: Callable[[], bool] | None = None,
        paused: Callable[[], bool] | None = None,
    ) -> None:
        self.consolidator = consolidator
        self.interval_s = interval_s
        # With several workers, only the one ``leader()`` answers True for runs the passes:
        # every worker would otherwise consolidate every session once per interval.
        self.leader = leader
        # While ``paused()`` (the control plane refuses writes: read-only, maintenance, an
        # emergency level) no pass runs: a pass writes entities and links.
        self.paused = paused

    async def run_once(self) -> list[ConsolidationReport]:
        reports = []
        for session_id in await self.consolidator.engine.list_sessions():
            try:
                reports.append(await self.consolidator.consolidate(session_id))
            except Exception:  # one session's failure must not stop the others
                log.exception("consolidation of session %s failed", session_id)
        return reports

    def _due(self) -> bool:
        if self.paused is not None and self.paused():
            return False
        return self.leader is None or self.leader()
