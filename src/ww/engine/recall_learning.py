"""The learning side of recall: features read from the learning store, side effects of a
recall with ``learn``, and feedback (``POST /api/v1/feedback``).

One path serves every kind of memory: the recall log, access times, values and feedback
entries are keyed by memory id, and each kind registers a ``LearnedKind`` (kinds.py) that
reads its memories and writes their FSRS state back. Episodes are registered first.

All state lives in the stores (record store, vector index, learning store), so every worker
and every restart sees the same thing; the only thing cached here is the FF encoder, keyed
by its stored version, which is checked on every recall.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from functools import partial
from typing import Any
from uuid import UUID

import numpy as np

from ww.config import Settings
from ww.control.flags import Flags
from ww.engine.dynamics import Fsrs, ReviewRating
from ww.engine.ff_encoder import FFEncoder
from ww.engine.kinds import LearnedKind
from ww.engine.learning import (
    actr_feature,
    eligibility,
    hebbian_decay,
    hebbian_strengthen,
    is_labile,
    modulated_hebbian,
    query_value,
    query_weights,
    reconsolidate,
    reward_rating_good,
    update_value,
)
from ww.engine.recall import Learned
from ww.models import Episode, FSRSState, MemoryType
from ww.storage.payload import episode_payload
from ww.storage.ports import (
    RecordStore,
    StoreUnavailableError,
    Vector,
    VectorIndex,
    VectorItem,
)
from ww.storage.ports.learning import (
    DEFAULT_VALUE,
    EncoderBlob,
    FeedbackEntry,
    HebbianEdge,
    LearningStore,
    MemoryState,
    PastRating,
    RecallLogEntry,
)

__all__ = [
    "FeedbackOutcome",
    "LearningParams",
    "MemoryNotInRecallError",
    "RecallLearning",
    "RecallNotFoundError",
]

log = logging.getLogger(__name__)

_ENCODER_CACHE = 64  # sessions whose FF encoder stays in memory
# One edge to change: its two ends and how the current weight becomes the new one.
_EdgeChange = tuple[UUID, UUID, Callable[[float], float]]


class RecallNotFoundError(LookupError):
    """No recall with that id in this session (unknown, expired, or another session's)."""


class MemoryNotInRecallError(LookupError):
    """Feedback names a memory that the recall did not return."""


@dataclass(frozen=True, slots=True)
class LearningParams:
    lability_window_hours: float = 6.0
    value_learning_rate: float = 0.3
    eligibility_tau_hours: float = 6.0
    actr_decay: float = 0.5
    actr_max_accesses: int = 32
    hebbian_learning_rate: float = 0.1
    hebbian_co_retrieval_top: int = 5
    hebbian_decay_tau_days: float = 30.0
    reconsolidation_rate: float = 0.1
    reconsolidation_max_step: float = 0.05
    ff_learning_rate: float = 0.05
    recall_log_retention_days: float = 30.0
    query_feedback_similarity: float = 0.9
    query_feedback_prior: float = 1.0

    @classmethod
    def from_settings(cls, s: Settings) -> LearningParams:
        return cls(
            lability_window_hours=s.lability_window_hours,
            value_learning_rate=s.value_learning_rate,
            eligibility_tau_hours=s.eligibility_tau_hours,
            actr_decay=s.actr_decay,
            actr_max_accesses=s.actr_max_accesses,
            hebbian_learning_rate=s.hebbian_learning_rate,
            hebbian_co_retrieval_top=s.hebbian_co_retrieval_top,
            hebbian_decay_tau_days=s.hebbian_decay_tau_days,
            reconsolidation_rate=s.reconsolidation_rate,
            reconsolidation_max_step=s.reconsolidation_max_step,
            ff_learning_rate=s.ff_learning_rate,
            recall_log_retention_days=s.recall_log_retention_days,
            query_feedback_similarity=s.query_feedback_similarity,
            query_feedback_prior=s.query_feedback_prior,
        )


@dataclass(frozen=True, slots=True)
class FeedbackOutcome:
    """What one feedback did to one memory (stored, so a repeat returns it unchanged)."""

    memory_id: UUID
    reward: float
    error: float
    labile: bool
    value_before: float
    value_after: float
    stability_before: float | None
    stability_after: float | None
    vector_moved: bool
    encoder_trained: bool
    edges_changed: int

    def to_json(self) -> str:
        d = {k: getattr(self, k) for k in self.__slots__}
        d["memory_id"] = str(self.memory_id)
        return json.dumps(d, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> FeedbackOutcome:
        d = json.loads(text)
        d["memory_id"] = UUID(d["memory_id"])
        return cls(**d)


def _changed(entry: FeedbackEntry) -> bool:
    """Whether the rating reached its memory: one given outside the lability window was
    recorded and left the memory alone, and counts for no later query either."""
    return bool(json.loads(entry.result).get("labile", True))


class RecallLearning:
    """Learning features and side effects for one engine; every mechanism behind a flag."""

    def __init__(
        self,
        *,
        learning: LearningStore,
        records: RecordStore,
        vectors: VectorIndex,
        fsrs: Fsrs,
        flags: Callable[[], Flags],
        params: LearningParams,
        dimension: int,
    ) -> None:
        self.learning = learning
        self.records = records
        self.vectors = vectors
        self.fsrs = fsrs
        # Read through the engine at each use: flags change at run time (ww.control).
        self._flags = flags
        self.params = params
        self.dimension = dimension
        self._encoders: OrderedDict[str, FFEncoder] = OrderedDict()
        # Feedback is read-compute-write over several stores; one at a time per process
        # keeps "apply once per (recall, memory)" exact. The stored primary key still
        # refuses a second entry should another worker race this one.
        self._feedback_lock = asyncio.Lock()
        self.kinds: list[LearnedKind[Any]] = [self._episode_kind()]

    def _episode_kind(self) -> LearnedKind[Episode]:
        async def save(session_id: str, episodes: Sequence[Episode]) -> None:
            for ep in episodes:
                await self.records.update_episode(session_id, ep)

        def learned(ep: Episode, fsrs: FSRSState | None, value: float) -> Episode:
            return ep.model_copy(update={"fsrs": fsrs, "value": value})

        return LearnedKind(
            kind=MemoryType.EPISODE,
            load=lambda sid, ids: self.records.get_episodes(sid, ids),
            save=save,
            fsrs_of=lambda ep: ep.fsrs,
            learned=learned,
            vector_learning=True,
            payload=episode_payload,
        )

    @property
    def flags(self) -> Flags:
        return self._flags()

    def register(self, kind: LearnedKind[Any]) -> None:
        """Give another kind of memory the recall log and feedback (entities, skills)."""
        self.kinds = [k for k in self.kinds if k.kind != kind.kind] + [kind]

    # -- recall features -----------------------------------------------------------------
    async def features(
        self, session_id: str, query: Vector, ids: Sequence[UUID], now: datetime
    ) -> Learned:
        f, p = self.flags, self.params
        got = await self.learning.candidate_learning(
            session_id, ids, edges=f.spreading_activation, ratings=f.query_feedback
        )
        states = got.states
        activation = {}
        if f.actr:
            activation = {
                i: actr_feature(s.access_times, now, p.actr_decay) for i, s in states.items()
            }
        value = {i: states[i].value if i in states else DEFAULT_VALUE for i in ids}
        if got.ratings:
            value.update(self._query_values(query, value, got.ratings))
        ff: dict[UUID, float] = {}
        if f.ff_encoder:
            encoder = await self.encoder(session_id, got.encoder_version)
            # 0.5 is "no opinion": the identity's score, and that of a memory whose vector
            # is not in the index yet (pending).
            ff = dict.fromkeys(ids, 0.5)
            if not encoder.is_identity:
                vecs = await self._vectors_or_none(session_id, ids)
                have = [i for i in ids if i in vecs]
                if have:
                    scores = encoder.features(query, np.stack([vecs[i] for i in have]))
                    ff.update({i: float(s) for i, s in zip(have, scores, strict=True)})
        edges: dict[UUID, list[tuple[UUID, float]]] = {}
        for e in got.edges:
            w = self._decayed(e, now)
            edges.setdefault(e.a, []).append((e.b, w))
            edges.setdefault(e.b, []).append((e.a, w))
        return Learned(activation=activation, value=value, ff=ff, edges=edges)

    def _query_values(
        self,
        query: Vector,
        value: Mapping[UUID, float],
        ratings: Mapping[UUID, Sequence[PastRating]],
    ) -> dict[UUID, float]:
        """The query-tied value of each candidate rated on a query near this one."""
        p = self.params
        flat = [(i, r) for i, rs in ratings.items() if i in value for r in rs]
        weights = query_weights(
            query, [r.query_vector for _, r in flat], p.query_feedback_similarity
        )
        near: dict[UUID, list[tuple[float, float]]] = {}
        for (i, r), w in zip(flat, weights.tolist(), strict=True):
            # The outcome is parsed only for the few ratings that count here.
            if w > 0.0 and _changed(r.entry):
                near.setdefault(i, []).append((w, r.entry.reward))
        return {i: query_value(value[i], wr, p.query_feedback_prior) for i, wr in near.items()}

    async def _vectors_or_none(self, session_id: str, ids: Sequence[UUID]) -> dict[UUID, Vector]:
        # With the vector index down, recall degrades and feedback still updates what lives
        # in the record and learning stores; only the vector-based steps are skipped.
        try:
            return await self.vectors.get_vectors(session_id, list(ids))
        except StoreUnavailableError as exc:
            log.warning("vectors unavailable to learning: %s", exc)
            return {}

    def _decayed(self, e: HebbianEdge, now: datetime) -> float:
        # Decay is applied on read (and before each strengthening) rather than by a sweep:
        # the stored weight and time are enough to know the weight at any instant.
        return hebbian_decay(
            e.weight, now - e.last_strengthened, self.params.hebbian_decay_tau_days
        )

    async def prune_edges(self, session_id: str, now: datetime, below: float, dry_run: bool) -> int:
        """Remove CO_RETRIEVED edges whose decayed weight is under ``below``; return how many.

        Decay itself needs no sweep (see ``_decayed``); pruning keeps dead edges from
        piling up.
        """
        dead = [
            (e.a, e.b)
            for e in await self.learning.session_edges(session_id)
            if self._decayed(e, now) < below
        ]
        if dead and not dry_run:
            await self.learning.delete_edges(session_id, dead)
        return len(dead)

    async def encoder(self, session_id: str, version: int | None = None) -> FFEncoder:
        """The session's encoder at ``version`` (read from the store when not given)."""
        if version is None:
            version = await self.learning.encoder_version(session_id)
        cached = self._encoders.get(session_id)
        if cached is not None and cached.version == version:
            self._encoders.move_to_end(session_id)
            return cached
        if version == 0:
            enc = FFEncoder.identity(self.dimension)
        else:
            blob = await self.learning.load_encoder(session_id)
            enc = (
                FFEncoder.identity(self.dimension)
                if blob is None
                else FFEncoder.from_bytes(blob.weights, blob.version)
            )
        self._encoders[session_id] = enc
        while len(self._encoders) > _ENCODER_CACHE:
            self._encoders.popitem(last=False)
        return enc

    # -- side effects of a recall with learn ---------------------------------------------
    async def after_recall(
        self,
        session_id: str,
        recall_id: UUID,
        query: Vector,
        hit_ids: Sequence[UUID],
        now: datetime,
        *,
        co_retrieved: Sequence[UUID] | None = None,
        log_recall: bool = True,
    ) -> None:
        """Log the recall for feedback and record an access on every hit.
        ``co_retrieved`` (default: the hits) are the ids, in rank order, whose top few get
        CO_RETRIEVED edges; those edges are an episode feature, so other kinds pass none.
        ``log_recall`` false leaves the log to a caller that logs several kinds as one."""
        if log_recall:
            await self.log(RecallLogEntry(recall_id, session_id, now, query, tuple(hit_ids)))
        await self.touch(
            session_id, hit_ids, now, hit_ids if co_retrieved is None else co_retrieved
        )

    async def log(self, entry: RecallLogEntry) -> None:
        """Remember what a recall returned, in rank order, so feedback can name it; entries
        older than the retention go."""
        forget = entry.created_at - timedelta(days=self.params.recall_log_retention_days)
        await self.learning.log_recall(entry, forget)

    async def touch(
        self,
        session_id: str,
        hit_ids: Sequence[UUID],
        now: datetime,
        co_retrieved: Sequence[UUID] = (),
    ) -> None:
        p = self.params
        # Access times feed ACT-R, the eligibility trace and the lability window.
        await self.learning.record_accesses(session_id, hit_ids, now, p.actr_max_accesses)
        if self.flags.hebbian and p.hebbian_co_retrieval_top > 1 and co_retrieved:
            top = list(co_retrieved[: p.hebbian_co_retrieval_top])
            strengthen = partial(hebbian_strengthen, rate=p.hebbian_learning_rate)
            pairs = [(a, b, strengthen) for a, b in itertools.combinations(top, 2)]
            await self._update_edges(session_id, pairs, now)

    async def _update_edges(
        self, session_id: str, changes: Sequence[_EdgeChange], now: datetime
    ) -> int:
        """Apply each change to its pair's current (decayed) weight; absent edges weigh 0."""
        if not changes:
            return 0
        ids = list(dict.fromkeys(i for a, b, _ in changes for i in (a, b)))
        current = {
            HebbianEdge.key(e.a, e.b): self._decayed(e, now)
            for e in await self.learning.edges(session_id, ids)
        }
        out: list[HebbianEdge] = []
        for x, y, change in changes:
            a, b = HebbianEdge.key(x, y)
            w = current.get((a, b), 0.0)
            new = change(w)
            if new != w:
                out.append(HebbianEdge(a, b, float(new), now))
        await self.learning.upsert_edges(session_id, out)
        return len(out)

    # -- feedback --------------------------------------------------------------------------
    async def feedback(
        self,
        session_id: str,
        recall_id: UUID,
        rewards: Mapping[UUID, float],
        now: datetime,
        default: float | None = None,
    ) -> list[FeedbackOutcome]:
        """Apply rewards (memory id -> r in [0, 1]) to one recall, once per memory;
        ``default`` rewards every other memory the recall returned. Outcomes come in the
        recall's rank order."""
        async with self._feedback_lock:
            entry = await self.learning.get_recall(session_id, recall_id)
            if entry is None:
                raise RecallNotFoundError(str(recall_id))
            returned = set(entry.memory_ids)
            stray = [m for m in rewards if m not in returned]
            if stray:
                raise MemoryNotInRecallError(str(stray[0]))
            order = {m: i for i, m in enumerate(entry.memory_ids)}
            if default is not None:
                rewards = {m: rewards.get(m, default) for m in entry.memory_ids}
            rewards = dict(sorted(rewards.items(), key=lambda kv: order[kv[0]]))
            done = await self.learning.feedback_entries(session_id, recall_id)
            fresh = {m: r for m, r in rewards.items() if m not in done}
            applied = await self._apply(session_id, entry, fresh, done, now) if fresh else {}
            if applied:
                await self.learning.save_feedback(
                    session_id,
                    [
                        FeedbackEntry(recall_id, m, o.reward, o.to_json())
                        for m, o in applied.items()
                    ],
                )
            results = {m: FeedbackOutcome.from_json(e.result) for m, e in done.items()}
            results.update(applied)
            return [results[m] for m in rewards if m in results]

    async def _apply(
        self,
        session_id: str,
        entry: RecallLogEntry,
        rewards: Mapping[UUID, float],
        done: Mapping[UUID, FeedbackEntry],
        now: datetime,
    ) -> dict[UUID, FeedbackOutcome]:
        f, p = self.flags, self.params
        ids = list(rewards)
        states = await self.learning.memory_states(session_id, ids)
        memories, kind_of = await self._load(session_id, ids)
        vectors: dict[UUID, Vector] = {}
        if f.ff_encoder or f.reconsolidation:
            on_vectors = [m for m in ids if m in kind_of and kind_of[m].vector_learning]
            vectors = await self._vectors_or_none(session_id, on_vectors)
        encoder = await self.encoder(session_id) if f.ff_encoder else None
        start_version = encoder.version if encoder is not None else 0
        values: dict[UUID, tuple[float, int]] = {}
        moved: list[VectorItem] = []
        changed: dict[MemoryType, list[Any]] = {}
        out: dict[UUID, FeedbackOutcome] = {}
        for m, reward in rewards.items():
            state = states.get(m, MemoryState())
            mem = memories.get(m)
            last = state.access_times[-1] if state.access_times else None
            labile = is_labile(last, now, p.lability_window_hours) if f.lability_window else True
            fsrs = kind_of[m].fsrs_of(mem) if mem is not None else None
            stab = fsrs.stability if fsrs is not None else None
            if not labile or mem is None:
                # Outside the window (or deleted since): the memory is consolidated and
                # feedback leaves it alone; it is still recorded as given.
                out[m] = FeedbackOutcome(
                    m, reward, 0.0, labile, state.value, state.value, stab, stab, False, False, 0
                )
                continue
            trace = eligibility(state.access_times, now, p.eligibility_tau_hours)
            vu = update_value(
                state.value,
                reward,
                state.rewards,
                three_factor=f.three_factor_learning,
                rate=p.value_learning_rate,
                trace=trace,
            )
            if vu.error == 0.0:
                out[m] = FeedbackOutcome(
                    m, reward, 0.0, labile, state.value, state.value, stab, stab, False, False, 0
                )
                continue
            values[m] = (vu.value, vu.rewards)
            kind = kind_of[m]
            rating = ReviewRating.GOOD if reward_rating_good(reward) else ReviewRating.AGAIN
            new_fsrs = self.fsrs.review(fsrs, rating, now) if fsrs is not None else None
            new_stab = new_fsrs.stability if new_fsrs is not None else None
            mem = kind.learned(mem, new_fsrs, vu.value)
            changed.setdefault(kind.kind, []).append(mem)
            trained = False
            if encoder is not None and m in vectors:
                # The step scales with the surprise: a reward the value already predicted
                # teaches the encoder nothing.
                encoder = encoder.train(
                    entry.query_vector,
                    vectors[m],
                    positive=vu.error > 0,
                    rate=p.ff_learning_rate * abs(vu.error),
                )
                trained = True
            did_move = False
            move = f.lability_window and f.reconsolidation and vu.error > 0
            if move and reward_rating_good(reward) and m in vectors:
                new_vec = reconsolidate(
                    vectors[m],
                    entry.query_vector,
                    reward,
                    p.reconsolidation_rate,
                    p.reconsolidation_max_step,
                )
                if kind.payload is not None and not np.array_equal(new_vec, vectors[m]):
                    moved.append(VectorItem(m, new_vec, kind.payload(mem)))
                    did_move = True
            out[m] = FeedbackOutcome(
                m,
                reward,
                vu.error,
                labile,
                state.value,
                vu.value,
                stab,
                new_stab,
                did_move,
                trained,
                0,
            )
        for k in self.kinds:
            if k.kind in changed:
                await k.save(session_id, changed[k.kind])
        await self.learning.set_values(session_id, values)
        if moved:
            try:
                await self.vectors.upsert(session_id, moved)
            except StoreUnavailableError as exc:
                log.warning("reconsolidation skipped, vector index unavailable: %s", exc)
                for item in moved:
                    out[item.id] = replace(out[item.id], vector_moved=False)
        if encoder is not None and encoder.version != start_version:
            blob = EncoderBlob(encoder.version, encoder.to_bytes())
            if await self.learning.save_encoder(session_id, blob, start_version):
                self._encoders[session_id] = encoder
        if f.three_factor_learning:
            # The reward-modulated Hebbian change is the third factor's; plain co-retrieval
            # strengthening (the ``hebbian`` flag) is separate.
            # CO_RETRIEVED edges are read by episode recall only, so only memories of the
            # kind that learns on its vectors (episodes) get them.
            edged = {m: o for m, o in out.items() if m in kind_of and kind_of[m].vector_learning}
            earlier: dict[UUID, FeedbackEntry] = {}
            if done and edged:
                _, done_kinds = await self._load(session_id, list(done))
                edgeable = {m for m, k in done_kinds.items() if k.vector_learning}
                earlier = {m: e for m, e in done.items() if m in edgeable}
            await self._modulated_edges(session_id, edged, earlier, now)
            out.update(edged)
        return out

    async def _load(
        self, session_id: str, ids: Sequence[UUID]
    ) -> tuple[dict[UUID, Any], dict[UUID, LearnedKind[Any]]]:
        """Each id's memory and kind; ids are unique across kinds, so each kind is asked
        only for the ids the kinds before it did not have (deleted ones are in none)."""
        memories: dict[UUID, Any] = {}
        kind_of: dict[UUID, LearnedKind[Any]] = {}
        rest = list(ids)
        for kind in self.kinds:
            if not rest:
                break
            found = await kind.load(session_id, rest)
            for i, mem in found.items():
                memories[i] = mem
                kind_of[i] = kind
            rest = [i for i in rest if i not in found]
        return memories, kind_of

    async def _modulated_edges(
        self,
        session_id: str,
        out: dict[UUID, FeedbackOutcome],
        done: Mapping[UUID, FeedbackEntry],
        now: datetime,
    ) -> None:
        """Reward-modulated Hebbian change between rewarded memories of one recall: each
        pair once, when its second member gets feedback, by their mean prediction error."""
        errors = {m: o.error for m, o in out.items() if o.error != 0.0}
        earlier = {
            m: FeedbackOutcome.from_json(e.result).error for m, e in done.items() if m not in out
        }
        rate = self.params.hebbian_learning_rate
        changes: list[_EdgeChange] = []
        new = list(errors)
        for i, a in enumerate(new):
            partners = [(b, errors[b]) for b in new[i + 1 :]]
            partners += [(b, eb) for b, eb in earlier.items() if eb != 0.0]
            for b, eb in partners:
                mod = (errors[a] + eb) / 2.0
                changes.append((a, b, partial(modulated_hebbian, rate=rate, modulator=mod)))
        if not changes:
            return
        await self._update_edges(session_id, changes, now)
        counts: dict[UUID, int] = {}
        for a, b, _ in changes:
            counts[a] = counts.get(a, 0) + 1
            counts[b] = counts.get(b, 0) + 1
        for m, o in list(out.items()):
            if counts.get(m):
                out[m] = replace(o, edges_changed=counts[m])
