"""MemoryEngine: the one facade the API, the SDK in-process mode and the CLI use.

It owns the two-store write protocol (record pending -> vector upserted -> record indexed),
the reconciler that repairs whatever a crash left between the two, and recall.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from uuid import UUID, uuid4

from ww.control.circuits import Circuits
from ww.control.flags import Flags
from ww.embedding import EmbeddingService
from ww.engine.close_mark import CloseMark
from ww.engine.comparisons import best_part_cosine, comparison_parts, embed_parts
from ww.engine.dynamics import Fsrs, ReviewRating
from ww.engine.embedding_lock import EmbeddingMismatchError, check_embedding_lock
from ww.engine.kinds import ReconcileReport, WriteProtocol
from ww.engine.recall import PRESETS, Fusion, Preset, query_words
from ww.engine.recall_learning import FeedbackOutcome, LearningParams, RecallLearning
from ww.engine.relevance import coverage, relevance
from ww.engine.time_cues import resolve_beside as resolve_time_cues
from ww.engine.time_cues import warm as warm_time_cues
from ww.models import (
    Episode,
    EpisodeCreate,
    EpisodeFilter,
    EpisodeUpdate,
    RecallHit,
    RecallResult,
    SessionStats,
)
from ww.storage.diskspace import learning_skipped_when_full
from ww.storage.payload import episode_payload
from ww.storage.ports import (
    AccessUpdate,
    EpisodePage,
    RecordStore,
    ScoredId,
    StoreUnavailableError,
    Vector,
    VectorIndex,
)
from ww.storage.ports.learning import LearningStore
from ww.storage.query_terms import keyword_terms
from ww.tracing import set_attributes, span, stage

__all__ = [
    "Clock",
    "EmbeddingMismatchError",
    "ExternalIdConflictError",
    "MemoryEngine",
    "ReconcileReport",
    "check_embedding_lock",
    "utc_now",
]

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


class ExternalIdConflictError(ValueError):
    """A create that must not duplicate an ``external_id`` met one the session has."""

    def __init__(self, known: Mapping[str, UUID]) -> None:
        self.known = dict(known)
        ids = ", ".join(f"{ext!r} is episode {eid}" for ext, eid in sorted(self.known.items()))
        super().__init__(f"external_id already stored in this session: {ids}")


class MemoryEngine:
    def __init__(
        self,
        *,
        records: RecordStore,
        vectors: VectorIndex,
        learning: LearningStore,
        embedder: EmbeddingService,
        fsrs: Fsrs | None = None,
        clock: Clock = utc_now,
        candidates: int = 50,
        flags: Flags | None = None,
        params: LearningParams | None = None,
        circuits: Circuits | None = None,
        close_mark: bool = False,  # the stores are this process's alone (ww.engine.close_mark)
    ) -> None:
        # The breakers ``records``, ``vectors`` and ``embedder`` sit behind when
        # ``build_engine`` wired them (health and the control routes report them).
        self.circuits = circuits or Circuits()
        self.records = records
        self._vectors = vectors
        self.learning = learning
        self.embedder = embedder
        self.fsrs = fsrs or Fsrs()
        self.clock = clock
        self.candidates = candidates
        self.flags = flags or Flags()
        self.recall_learning = RecallLearning(
            learning=learning,
            records=records,
            vectors=vectors,
            fsrs=self.fsrs,
            flags=lambda: self.flags,
            params=params or LearningParams(),
            dimension=vectors.dimension,
        )
        self.writes = WriteProtocol[Episode](
            name="episodes",
            store=records,
            vectors_of=lambda: self._vectors,
            embedder=embedder,
            text=lambda ep: ep.content,
            payload=episode_payload,
            pending=records.pending_episodes,
            ensure_session=records.ensure_session,
            learning=learning,
        )
        self._last_write = clock()
        self.mark = CloseMark(records, vouch=close_mark)
        self.closed_cleanly_before = False
        # Start-up trusted agreeing counts: ids not compared yet (Maintenance does it).
        self.ids_unverified = False
        # Other memories (entities, skills) in the same stores delete their part of a
        # session here, before the session's record goes.
        self.session_deleters: list[Callable[[str], Awaitable[None]]] = []

    @property
    def vectors(self) -> VectorIndex:
        return self._vectors

    @vectors.setter
    def vectors(self, index: VectorIndex) -> None:
        # Tests swap the index to simulate an outage; learning must follow the same one.
        self._vectors = index
        self.recall_learning.vectors = index

    # -- lifecycle --------------------------------------------------------------------------
    async def open(self) -> ReconcileReport:
        await self.records.open()
        # The lock is checked before the vector index opens so a model change is reported
        # as such, not as an index that fails to load.
        await self._check_embedding_lock()
        self.closed_cleanly_before = await self.mark.take()
        await self.vectors.open()
        report = await self.writes.reconcile(trust_counts=self.closed_cleanly_before)
        self.ids_unverified = self.closed_cleanly_before  # maintenance compares them soon
        await asyncio.to_thread(warm_time_cues)
        self.mark.arm()  # only an open that completed may mark a clean close
        return report

    async def close(self) -> None:
        token = self.mark.disarm()
        try:
            await self.vectors.close()
            await self.mark.leave(token, verified=not self.ids_unverified)
        finally:
            try:
                await self.records.close()
            finally:
                await self.embedder.aclose()

    async def _check_embedding_lock(self) -> None:
        model, dim = self.embedder.model_id, self.embedder.dimension
        if dim != self.vectors.dimension:
            raise EmbeddingMismatchError(
                f"embedder {model!r} produces {dim}-dimensional vectors but "
                f"WW_EMBEDDING_DIMENSION={self.vectors.dimension}"
            )
        await check_embedding_lock(self.records, model, dim)

    async def reconcile(
        self, *, full: bool = True, grace: timedelta = timedelta(0)
    ) -> ReconcileReport:
        """Index records left pending (those ingested more than ``grace`` ago, so writes in
        flight are left to finish). ``full`` also compares both stores id by id: vectors
        whose record is gone are deleted and records whose vector is missing re-indexed;
        it reads every id, so it runs at start-up rather than on every pass."""
        cutoff = self.clock() - grace if grace > timedelta(0) else None
        return await self.writes.reconcile(full=full, cutoff=cutoff)

    async def health(self) -> dict[str, str]:
        """Status per component: ``ok`` or the error that makes it unavailable."""
        report: dict[str, str] = {}
        for name, check in (("records", self.records.check), ("vectors", self.vectors.check)):
            try:
                await check()
                report[name] = "ok"
            except Exception as exc:  # health must describe, never raise
                report[name] = f"error: {exc}"
        try:
            vec = await self.embedder.embed_one("health check")
            report["embedder"] = "ok" if vec.shape == (self.embedder.dimension,) else "bad shape"
        except Exception as exc:
            report["embedder"] = f"error: {exc}"
        return report

    # -- episodes ---------------------------------------------------------------------------
    async def create_episodes(
        self, session_id: str, items: Sequence[EpisodeCreate]
    ) -> list[Episode]:
        """Store episodes; once this returns they survive a crash of the process."""
        now = self._last_write = self.clock()
        episodes = self._new_episodes(session_id, items, now)
        return await self.writes.create(session_id, episodes, now, self.records.insert_episodes)

    async def create_episodes_once(
        self, session_id: str, items: Sequence[EpisodeCreate], *, all_or_nothing: bool = False
    ) -> list[tuple[Episode, bool]]:
        """Store the items whose ``external_id`` the session does not have yet; each item's
        episode comes back with True when it was stored now, or the session's existing
        episode with that ``external_id`` with False (an item repeating an earlier item's
        ``external_id`` gets that item's episode). With ``all_or_nothing``, one known
        ``external_id`` stores none and raises ``ExternalIdConflictError``. Items without
        an ``external_id`` are always stored."""
        now = self._last_write = self.clock()
        episodes = self._new_episodes(session_id, items, now)
        firsts: dict[str, Episode] = {}
        for ep in episodes:
            if ep.external_id is not None:
                firsts.setdefault(ep.external_id, ep)
        candidates = [
            ep for ep in episodes if ep.external_id is None or firsts[ep.external_id] is ep
        ]
        vectors = await self.writes.embed(candidates, fresh=True)
        await self.writes.ensure_session(session_id, now)
        known = await self.records.insert_new_external(
            session_id, candidates, all_or_nothing=all_or_nothing
        )
        if known and all_or_nothing:
            raise ExternalIdConflictError(known)
        stored = [
            (ep, vec)
            for ep, vec in zip(candidates, vectors, strict=True)
            if ep.external_id not in known
        ]
        indexed = await self.writes.index(
            session_id, [ep for ep, _ in stored], [vec for _, vec in stored]
        )
        existing = await self.records.get_episodes(session_id, list(known.values()))
        new_by_id = {ep.id: ep for ep in indexed}
        out: list[tuple[Episode, bool]] = []
        for ep in episodes:
            ext = ep.external_id
            if ext is not None and ext in known:
                if known[ext] not in existing:  # deleted since: still not ours to create
                    raise ExternalIdConflictError({ext: known[ext]})
                out.append((existing[known[ext]], False))
            elif ext is not None and firsts[ext] is not ep:
                first = firsts[ext]
                out.append((new_by_id.get(first.id, first), False))
            else:
                out.append((new_by_id.get(ep.id, ep), True))
        return out

    def _new_episodes(
        self, session_id: str, items: Sequence[EpisodeCreate], now: datetime
    ) -> list[Episode]:
        return [
            Episode(
                id=uuid4(),
                session_id=session_id,
                content=item.content,
                timestamp=item.timestamp or now,
                ingested_at=now,
                speaker=item.speaker,
                source=item.source,
                context=item.context,
                metadata=item.metadata,
                external_id=item.external_id,
                outcome=item.outcome,
                importance=item.importance,
                fsrs=self.fsrs.new_state(now),
            )
            for item in items
        ]

    async def get_episode(self, session_id: str, episode_id: UUID) -> Episode | None:
        return await self.records.get_episode(session_id, episode_id)

    async def list_episodes(
        self, session_id: str, flt: EpisodeFilter, limit: int, cursor: str | None
    ) -> EpisodePage:
        return await self.records.list_episodes(session_id, flt, limit, cursor)

    async def update_episode(
        self, session_id: str, episode_id: UUID, patch: EpisodeUpdate
    ) -> Episode | None:
        current = await self.records.get_episode(session_id, episode_id)
        if current is None:
            return None
        changes = patch.model_dump(exclude_unset=True)
        updated = current.model_validate({**current.model_dump(), **changes})
        return await self.writes.rewrite(session_id, current, updated, self._store_update)

    async def _store_update(self, session_id: str, episode: Episode) -> bool:
        stored = await self.records.update_episode(session_id, episode)
        if stored:
            self._last_write = self.clock()
        return stored

    async def delete_episode(self, session_id: str, episode_id: UUID) -> bool:
        if await self.records.get_episode(session_id, episode_id) is None:
            return False
        self._last_write = self.clock()
        return await self.writes.delete(session_id, episode_id, self.records.delete_episode)

    async def mark_important(
        self, session_id: str, episode_id: UUID, importance: float
    ) -> Episode | None:
        current = await self.records.get_episode(session_id, episode_id)
        if current is None:
            return None
        now = self.clock()
        updated = current.model_copy(
            update={
                "importance": max(current.importance, importance),
                "fsrs": self.fsrs.review(current.fsrs, ReviewRating.EASY, now),
            }
        )
        await self.records.update_episode(session_id, updated)
        return updated

    # -- recall -----------------------------------------------------------------------------
    async def recall_episodes(
        self,
        session_id: str,
        query: str,
        *,
        limit: int = 10,
        flt: EpisodeFilter | None = None,
        preset: Preset = Preset.BALANCED,
        learn: bool = True,
        query_vector: Vector | None = None,
        log_recall: bool = True,
        at: datetime | None = None,
        min_relevance: float | None = None,
    ) -> RecallResult:
        """``log_recall`` false leaves the recall log to the caller (unified recall logs
        every type's hits under one id); the other side effects of ``learn`` stay. ``at`` is
        when the question is asked (default: the clock's now): recency and relative time
        words in the query are judged from it. ``min_relevance`` drops the hits whose
        calibrated relevance is below it."""
        # The span names the session and counts, never the query.
        with span("ww.recall.episodes", **{"ww.session": session_id, "ww.limit": limit}) as s:
            result = await self._recall_episodes(
                session_id,
                query,
                limit,
                flt,
                preset,
                learn,
                query_vector,
                log_recall,
                at,
                min_relevance,
            )
            set_attributes(s, **{"ww.hits": len(result.hits), "ww.degraded": result.degraded})
            return result

    async def _recall_episodes(
        self,
        session_id: str,
        query: str,
        limit: int,
        flt: EpisodeFilter | None,
        preset: Preset,
        learn: bool,
        query_vector: Vector | None,
        log_recall: bool,
        at: datetime | None,
        min_relevance: float | None,
    ) -> RecallResult:
        flt = flt or EpisodeFilter()
        # ``at`` moves only the ranking's idea of now; what a recall records (reviews, access
        # times, the log) happens now, so a question dated in the past cannot rewind state.
        clock_now = self.clock()
        # ``at`` keeps the asker's offset for reading "yesterday" in their own day; every
        # other use of it is an instant, taken in UTC. Without ``at``, days are UTC days.
        asked = at or clock_now
        now = asked.astimezone(UTC)
        n = max(self.candidates, limit)
        # Keyword search needs no vector: it runs on a store thread while the query is
        # embedded on another (both release the GIL), so its cost hides behind the model's.
        keyword_task = asyncio.ensure_future(self._keyword(session_id, query, flt, n))
        # Reading the query's time expressions is pure Python: where dateparser has a word to
        # read, a thread keeps it beside the embedding rather than before it.
        cue_task = asyncio.ensure_future(resolve_time_cues(query, asked))
        # A comparison's events are embedded beside the query (ww.engine.comparisons).
        parts = comparison_parts(query)
        parts_task = asyncio.ensure_future(embed_parts(self.embedder.embed_many, parts))
        try:
            if query_vector is None:  # unified recall embeds once and passes it down
                with stage("embed"):
                    query_vector = await self.embedder.embed_one(query)
            with stage("vector_search"):
                dense_or_none = await self._dense(session_id, query_vector, flt, n)
        except BaseException:
            # Reading the outcome keeps a failed search from being logged as unretrieved.
            for task in (keyword_task, cue_task, parts_task):
                task.cancel()
                task.add_done_callback(lambda t: t.cancelled() or t.exception())
            raise
        keyword = await keyword_task
        cue = await cue_task
        degraded = dense_or_none is None
        dense = dense_or_none or []
        candidate_ids = list(dict.fromkeys([s.id for s in dense] + [s.id for s in keyword]))
        cosine = {s.id: s.score for s in dense}
        keyword_only = [s.id for s in keyword if s.id not in cosine]
        # The candidates' rows, their learned features and the cosine of keyword-only ones
        # (scored in the index rather than by fetching vectors into Python) are independent
        # reads: each store thread takes one, so the wait is the longest, not the sum.
        with stage("candidates", **{"ww.candidates": len(candidate_ids)}):
            rows, learned, within = await asyncio.gather(
                self.records.candidate_rows(session_id, candidate_ids, flt),
                self.recall_learning.features(session_id, query_vector, candidate_ids, now),
                self._keyword_only_cosine(session_id, query_vector, flt, keyword_only, degraded),
            )
        degraded = degraded or within is None
        cosine.update((s.id, s.score) for s in within or ())
        semantic, part_vectors = cosine, await parts_task
        if part_vectors is not None and not degraded:
            with stage("parts", **{"ww.parts": len(parts)}):
                semantic = await best_part_cosine(
                    cosine,
                    part_vectors,
                    lambda v: self._within(session_id, v, flt, candidate_ids, degraded),
                )
        temporal = self.flags.spreading_activation
        with stage("fusion", **{"ww.candidates": len(rows), "ww.temporal": temporal}):
            fusion = Fusion(
                candidates=rows,
                cosine=semantic,
                keyword=keyword,
                weights=PRESETS[preset],
                fsrs=self.fsrs if self.flags.fsrs else None,
                now=now,
                words=query_words(query),
                learned=learned,
                temporal=temporal,
                cue=cue,
            )
            contenders = [rows[i] for i in fusion.contenders(limit)]
        near: dict[UUID, tuple[UUID, ...]] = {}
        if temporal:
            with stage("neighbours", **{"ww.contenders": len(contenders)}):
                near = await self.records.neighbours(session_id, contenders)
        with stage("rank"):
            scored = fusion.rank(limit, near)
        with stage("fetch"):
            episodes = await self.records.get_episodes(session_id, [s.id for s in scored])
        terms = keyword_terms(query)
        hits = [
            RecallHit(
                id=s.id,
                external_id=episodes[s.id].external_id,
                score=s.score,
                score_parts=s.parts,
                # The raw cosine, not the part clipped to [0, 1]: the fit saw raw cosines.
                relevance=relevance(cosine.get(s.id, 0.0), coverage(terms, episodes[s.id].content)),
                episode=episodes[s.id],
            )
            for s in scored
            if s.id in episodes  # deleted between scoring and fetching
        ]
        if min_relevance is not None:
            hits = [h for h in hits if h.relevance >= min_relevance]
        result = RecallResult(
            recall_id=uuid4(), query=query, hits=hits, degraded=degraded
        ).with_cue_parts(
            frozenset(part for part, on in (("time", cue.windows), ("newest", cue.latest)) if on)
        )
        if learn and hits:
            with stage("learn", **{"ww.hits": len(hits)}), learning_skipped_when_full():
                await self._learn_from_recall(session_id, [h.episode for h in hits], clock_now)
                await self.recall_learning.after_recall(
                    session_id,
                    result.recall_id,
                    query_vector,
                    [h.id for h in hits],
                    clock_now,
                    log_recall=log_recall,
                )
        return result

    async def feedback(
        self,
        session_id: str,
        recall_id: UUID,
        *,
        reward: float | None = None,
        rewards: Mapping[UUID, float] | None = None,
    ) -> list[FeedbackOutcome]:
        """Rewards for a recall made with ``learn``: ``reward`` for every memory it returned
        and/or ``rewards`` per memory (these win). Raises ``RecallNotFoundError`` or
        ``MemoryNotInRecallError``; a repeat returns the first outcome and changes nothing."""
        return await self.recall_learning.feedback(
            session_id, recall_id, rewards or {}, self.clock(), default=reward
        )

    async def _keyword(
        self, session_id: str, query: str, flt: EpisodeFilter, n: int
    ) -> list[ScoredId]:
        with stage("keyword_search"):
            return await self.records.keyword_search(session_id, query, flt, n)

    async def _within(
        self,
        session_id: str,
        vector: Vector,
        flt: EpisodeFilter,
        ids: Sequence[UUID],
        degraded: bool,
    ) -> list[ScoredId]:
        if not ids or degraded:
            return []
        return await self.vectors.search(session_id, vector, flt, len(ids), within=ids)

    async def _keyword_only_cosine(
        self, session_id: str, v: Vector, flt: EpisodeFilter, ids: Sequence[UUID], degraded: bool
    ) -> list[ScoredId] | None:
        # An index that fails after the dense search answered leaves these candidates
        # without a cosine: degraded, as if the dense search had failed.
        try:
            return await self._within(session_id, v, flt, ids, degraded)
        except StoreUnavailableError as exc:
            log.warning("keyword-only candidates ranked without their cosine: %s", exc)
            return None

    async def _dense(
        self, session_id: str, vector: Vector, flt: EpisodeFilter, n: int
    ) -> list[ScoredId] | None:
        try:
            return await self.vectors.search(session_id, vector, flt, n)
        except StoreUnavailableError as exc:
            log.warning("recall degraded to keyword only: %s", exc)
            return None

    async def _learn_from_recall(
        self, session_id: str, episodes: Sequence[Episode], now: datetime
    ) -> None:
        # A memory retrieved into the top-k counts as a successful review.
        # FSRS state is kept whatever the ``fsrs`` flag says (it only decides whether
        # retrievability ranks), so switching the flag on finds memories' true strength.
        updates = [
            AccessUpdate(
                id=ep.id,
                fsrs=self.fsrs.review(ep.fsrs, ReviewRating.GOOD, now),
                access_count=ep.access_count + 1,
                last_accessed=now,
            )
            for ep in episodes
        ]
        await self.records.record_access(session_id, updates)

    # -- sessions ---------------------------------------------------------------------------
    async def list_sessions(self) -> list[str]:
        return await self.records.list_sessions()

    async def session_stats(self, session_id: str) -> SessionStats | None:
        return await self.records.session_stats(session_id)

    async def session_stats_page(self, limit: int, after: str | None) -> list[SessionStats]:
        return await self.records.session_stats_page(limit, after)

    async def delete_session(self, session_id: str) -> int | None:
        """Delete the session and everything in it; the number of episodes removed."""
        held = await self.delete_session_counted(session_id)
        return None if held is None else held.episodes

    async def delete_session_counted(self, session_id: str) -> SessionStats | None:
        """Delete the session; what it held. Entity and skill counts are taken just before
        the deletion (their deleters return nothing); the episode count is what went."""
        async with self.writes.sessions.hold(session_id):  # not beside its reconciler pass
            held = await self.records.session_stats(session_id)
            if held is None:
                return None
            await self.vectors.delete_session(session_id)
            for deleter in self.session_deleters:
                await deleter(session_id)
            await self.learning.delete_session(session_id)
            episodes = await self.records.delete_session(session_id)
            return held.model_copy(update={"episodes": episodes})

    # -- maintenance ------------------------------------------------------------------------
    def seconds_since_last_write(self) -> float:
        return (self.clock() - self._last_write).total_seconds()

    def note_write(self) -> None:
        """Writes made around the engine (an import) also postpone index optimisation."""
        self._last_write = self.clock()
