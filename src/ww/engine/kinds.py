"""What every kind of memory shares: the write protocol, its repair, and what the shared
learning path needs from a kind.

Episodes, entities and skills live the same way: a record store is the source of truth and
a vector index holds one vector per record. :class:`WriteProtocol` is the one
implementation of embed -> commit pending -> upsert vectors -> mark indexed, of the
reconciler that repairs what a crash left between the two stores, and of deletes (vector
first). :class:`LearnedKind` is a kind's side of the recall log and feedback
(``RecallLearning``). A kind supplies only what really differs: its store's reads, the text
it embeds and the payload it filters on. A new kind of memory is one ``WriteProtocol`` and
one ``LearnedKind``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, NamedTuple, Protocol, Self, TypeVar
from uuid import UUID

from ww.embedding import EmbeddingService
from ww.engine.activation import min_max
from ww.models import EpisodeFilter, FSRSState, IndexState, MemoryType
from ww.storage.ports import ScoredId, StoreUnavailableError, Vector, VectorIndex, VectorItem
from ww.storage.ports.learning import LearningStore

__all__ = [
    "Candidates",
    "Embedded",
    "KindStore",
    "LearnedKind",
    "Memory",
    "ReconcileReport",
    "SessionLocks",
    "WriteProtocol",
    "candidates",
]

log = logging.getLogger(__name__)

Memory = TypeVar("Memory")
_BATCH = 256  # pending records the reconciler reads at a time
# Windows (parts) embedded and written per step of the reconciler and an import: 256 long
# memories can have tens of thousands, one model call and one index write too many.
_MAX_WINDOWS = 2048


@dataclass(frozen=True, slots=True)
class ReconcileReport:
    indexed: int
    orphans_removed: int


class Embedded(NamedTuple):
    """A memory's vectors: its text's own (what recall sees first and what
    reconsolidation moves) and the parts, the vectors of the text's windows after the
    first, so every word of a long memory is searchable by meaning."""

    vector: Vector
    # None for a memory just created without further windows: it has no parts to replace.
    parts: tuple[Vector, ...] | None = ()


class Record(Protocol):
    """A memory as the write protocol sees it: an id and an index state to copy."""

    @property
    def id(self) -> UUID: ...

    def model_copy(self, *, update: Mapping[str, Any] | None = None, deep: bool = False) -> Self:
        """Pydantic's copy-with-changes."""


class KindStore(Protocol):
    """The port methods of every kind's record store that the write protocol uses."""

    async def mark_indexed(self, session_id: str, ids: Sequence[UUID]) -> None: ...
    async def mark_pending(self, session_id: str, ids: Sequence[UUID]) -> None: ...
    async def indexed_ids(self, session_id: str) -> set[UUID]: ...
    async def indexed_count(self, session_id: str) -> int: ...
    async def existing_ids(self, session_id: str, ids: Sequence[UUID]) -> set[UUID]: ...
    async def list_sessions(self) -> list[str]: ...


R = TypeVar("R", bound=Record)


class SessionLocks:
    """One asyncio lock per session, for what must not interleave with the session's
    deletion: a reconciler pass re-indexing a session whose vectors were just deleted would
    leave vectors behind once its records go too."""

    def __init__(self) -> None:
        self._held: dict[str, tuple[asyncio.Lock, int]] = {}

    @asynccontextmanager
    async def hold(self, session_id: str) -> AsyncIterator[None]:
        lock, users = self._held.get(session_id, (asyncio.Lock(), 0))
        self._held[session_id] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._held[session_id]
            if users == 1:
                del self._held[session_id]
            else:
                self._held[session_id] = (lock, users - 1)


@dataclass(frozen=True, kw_only=True)
class WriteProtocol(Generic[R]):
    """The two-store write protocol of one kind of memory.

    ``vectors_of`` gives the vector index and is called on every use (tests swap an engine's
    index to simulate an outage). ``pending`` lists a session's pending records, oldest
    first, optionally only those written before a cutoff.
    """

    name: str
    store: KindStore
    vectors_of: Callable[[], VectorIndex]
    embedder: EmbeddingService
    text: Callable[[R], str]
    payload: Callable[[R], dict[str, Any]]
    pending: Callable[[str, int, datetime | None], Awaitable[Sequence[R]]]
    ensure_session: Callable[[str, datetime], Awaitable[None]]
    learning: LearningStore | None = None
    sessions: SessionLocks = field(default_factory=SessionLocks)

    @property
    def vectors(self) -> VectorIndex:
        return self.vectors_of()

    async def embed(self, memories: Sequence[R], *, fresh: bool = False) -> list[Embedded]:
        """Step 1, before anything is written: a failure here writes nothing. ``fresh``:
        the memories are new, so one without further windows has no stale parts to
        remove."""
        texts = [self.text(m) for m in memories]
        return await self._embed(texts, await self._windows(texts), None, fresh=fresh)

    async def parts(self, memories: Sequence[R], vectors: Sequence[Vector]) -> list[Embedded]:
        """The memories with the vectors given (an import's, a routed entity's) and the
        parts embedded from their texts."""
        texts = [self.text(m) for m in memories]
        return await self._embed(texts, await self._windows(texts), vectors)

    async def batches(
        self, memories: Sequence[R], vectors: Sequence[Vector] | None = None
    ) -> AsyncIterator[tuple[list[R], list[Embedded]]]:
        """:meth:`embed` (or :meth:`parts` with ``vectors``) in steps of whole memories with
        at most ``_MAX_WINDOWS`` windows in all (or one memory), so one model call and one
        index write stay bounded however long the memories are."""
        texts = [self.text(m) for m in memories]
        extra = await self._windows(texts)
        start = count = 0
        for end in range(len(memories) + 1):
            if end == len(memories) or (end > start and count + len(extra[end]) > _MAX_WINDOWS):
                if end > start:
                    given = None if vectors is None else vectors[start:end]
                    yield (
                        list(memories[start:end]),
                        await self._embed(texts[start:end], extra[start:end], given),
                    )
                start, count = end, 0
            if end < len(memories):
                count += len(extra[end])

    async def _windows(self, texts: list[str]) -> list[list[str]]:
        return [w[1:] for w in await self.embedder.windows_many(texts)]

    async def _embed(
        self,
        texts: list[str],
        extra: list[list[str]],
        vectors: Sequence[Vector] | None,
        *,
        fresh: bool = False,
    ) -> list[Embedded]:
        flat = [w for ws in extra for w in ws]
        mains: Sequence[Vector] = vectors if vectors is not None else []
        if vectors is None and texts:
            mains = list(await self.embedder.embed_many(texts))
        # Windows skip the cache: they are seldom asked for again and would push out the
        # texts and queries that are.
        rows: list[Vector] = list(await self.embedder.embed_many(flat, cache=False)) if flat else []
        out: list[Embedded] = []
        at = 0
        for main, windows in zip(mains, extra, strict=True):
            parts = tuple(rows[at : at + len(windows)])
            out.append(Embedded(main, None if fresh and not parts else parts))
            at += len(windows)
        return out

    async def create(
        self,
        session_id: str,
        memories: Sequence[R],
        now: datetime,
        insert: Callable[[str, Sequence[R]], Awaitable[None]],
    ) -> list[R]:
        """The whole write of new records: embed first (a failure writes nothing), make sure
        the session exists, commit them pending, then index them."""
        vectors = await self.embed(memories, fresh=True)
        await self.ensure_session(session_id, now)
        await insert(session_id, memories)
        return await self.index(session_id, memories, vectors)

    def items(self, memories: Sequence[R], vectors: Sequence[Embedded]) -> list[VectorItem]:
        # The parts as a tuple, possibly empty: a shorter text's stale parts go (None: a
        # new memory without parts, nothing to remove).
        return [
            VectorItem(m.id, e.vector, self.payload(m), parts=e.parts)
            for m, e in zip(memories, vectors, strict=True)
        ]

    async def index(
        self, session_id: str, memories: Sequence[R], vectors: Sequence[Embedded]
    ) -> list[R]:
        """Steps 3 and 4 for records committed pending: the records as they now are."""
        items = self.items(memories, vectors)
        try:
            await self.vectors.upsert(session_id, items)
            await self.store.mark_indexed(session_id, [m.id for m in memories])
        except StoreUnavailableError as exc:
            # The records are committed: the reconciler indexes them once the index is back.
            log.warning(
                "vector index unavailable, %d %s left pending: %s", len(items), self.name, exc
            )
            return list(memories)
        return [m.model_copy(update={"index_state": IndexState.INDEXED}) for m in memories]

    async def sync_payload(self, session_id: str, memory: R) -> R:
        """A record changed without its text: its vector's payload must follow."""
        try:
            await self.vectors.set_payload(session_id, memory.id, self.payload(memory))
        except StoreUnavailableError as exc:
            log.warning("vector payload of a %s not updated: %s", self.name, exc)
            await self.store.mark_pending(session_id, [memory.id])
            return memory.model_copy(update={"index_state": IndexState.PENDING})
        return memory

    async def rewrite(
        self,
        session_id: str,
        current: R,
        updated: R,
        store: Callable[[str, R], Awaitable[bool]],
    ) -> R | None:
        """An update of a committed record: when its text changed it is embedded first (a
        failure writes nothing), stored pending and indexed again; otherwise only its
        vector's payload follows. None when ``store`` finds the record gone."""
        reembed = self.text(updated) != self.text(current)
        if reembed:
            vectors = await self.embed([updated])
            updated = updated.model_copy(update={"index_state": IndexState.PENDING})
        if not await store(session_id, updated):
            return None
        if reembed:
            return (await self.index(session_id, [updated], vectors))[0]
        return await self.sync_payload(session_id, updated)

    async def delete(
        self, session_id: str, memory_id: UUID, remove: Callable[[str, UUID], Awaitable[bool]]
    ) -> bool:
        """Vector first: a crash in between leaves a record the reconciler re-indexes, never
        a vector that points at nothing. Learned state goes with the record."""
        await self.vectors.delete(session_id, [memory_id])
        deleted = await remove(session_id, memory_id)
        if self.learning is not None:
            await self.learning.forget(session_id, [memory_id])
        return deleted

    async def reconcile(
        self, *, full: bool = True, cutoff: datetime | None = None, trust_counts: bool = False
    ) -> ReconcileReport:
        """Index pending records (written before ``cutoff``, if given). ``full`` also
        compares both stores id by id: records whose vector is missing are re-indexed and
        vectors whose record is gone deleted; it reads every id, so it runs at start-up.
        ``trust_counts`` (the stores were closed cleanly, ``ww.engine.close_mark``) skips
        that comparison for a session whose two counts agree. A pass with a ``cutoff`` runs
        beside live writes (maintenance); each session's pass holds its ``sessions`` lock,
        which the session's deletion holds too."""
        indexed = removed = 0
        for session_id in await self.store.list_sessions():
            async with self.sessions.hold(session_id):
                compare = full and not (trust_counts and await self._counts_agree(session_id))
                done = await self._reconcile_session(session_id, compare, cutoff)
            indexed, removed = indexed + done.indexed, removed + done.orphans_removed
        if indexed or removed:
            log.info(
                "reconciled %s: %d indexed, %d orphan vectors removed", self.name, indexed, removed
            )
        return ReconcileReport(indexed, removed)

    async def _reconcile_session(
        self, session_id: str, compare: bool, cutoff: datetime | None
    ) -> ReconcileReport:
        indexed = removed = 0
        unknown: set[UUID] = set()
        if compare:
            if cutoff is None:  # nothing else writes yet: read both id sets at once
                vector_ids, indexed_ids = await asyncio.gather(
                    self.vectors.ids(session_id), self.store.indexed_ids(session_id)
                )
            else:
                # Beside live writes the records go first: a record marked indexed has had
                # its vector written, so a create that lands between the reads is never
                # taken for a lost vector.
                indexed_ids = await self.store.indexed_ids(session_id)
                vector_ids = await self.vectors.ids(session_id)
            # Two differences of up to a million ids each (about 0.1 s at 1M): on a thread,
            # so a pass beside live traffic (maintenance) does not hold the event loop.
            lost, unknown = await asyncio.to_thread(_differences, indexed_ids, vector_ids)
            if lost:
                await self.store.mark_pending(session_id, list(lost))
            # A vector whose record is marked indexed has its record; only the others can be
            # orphans (``unknown``), so only they are looked up (at a million memories,
            # looking every id up took 14 of the 22 seconds of a start-up).
        while batch := await self.pending(session_id, _BATCH, cutoff):
            async for some, embedded in self.batches(batch):
                await self.vectors.upsert(session_id, self.items(some, embedded))
                await self.store.mark_indexed(session_id, [m.id for m in some])
                indexed += len(some)
        if compare:
            orphans = unknown - await self.store.existing_ids(session_id, list(unknown))
            if orphans:
                await self.vectors.delete(session_id, list(orphans))
                removed += len(orphans)
        return ReconcileReport(indexed, removed)

    async def _counts_agree(self, session_id: str) -> bool:
        vectors, records = await asyncio.gather(
            self.vectors.count(session_id), self.store.indexed_count(session_id)
        )
        return vectors == records


def _differences(indexed: set[UUID], vectors: set[UUID]) -> tuple[set[UUID], set[UUID]]:
    """Records marked indexed without a vector, and vectors without such a record."""
    return indexed - vectors, vectors - indexed


@dataclass(frozen=True, slots=True)
class Candidates:
    """A recall's candidates: cosine per id, min-max keyword score per id, ids in order
    (dense hits first), and whether the vector index was unavailable."""

    cosine: dict[UUID, float]
    keyword: dict[UUID, float]
    ids: list[UUID]
    degraded: bool


async def candidates(
    vectors: VectorIndex,
    session_id: str,
    query_vector: Vector,
    dense: Sequence[ScoredId] | None,
    keyword: Sequence[ScoredId],
) -> Candidates:
    """The dense + keyword candidate step of entity and skill recall: keyword-only
    candidates get their cosine from a search restricted to them, so every candidate has
    every feature. ``dense`` is None when the index was unavailable (keyword only)."""
    cosine = {s.id: s.score for s in dense or []}
    kw = min_max({s.id: s.score for s in keyword})
    ids = list(dict.fromkeys([*cosine, *kw]))
    filled = await fill_cosine(
        vectors, session_id, query_vector, [i for i in ids if i not in cosine], cosine
    )
    # Keyword-only candidates left without their cosine degrade the recall, as episodes'
    # do (MemoryEngine._keyword_only_cosine).
    return Candidates(cosine, kw, ids, dense is None or not filled)


async def fill_cosine(
    vectors: VectorIndex,
    session_id: str,
    query_vector: Vector,
    ids: Sequence[UUID],
    cosine: dict[UUID, float],
) -> bool:
    """Add the cosine of ``ids`` to ``cosine``; False if the index could not answer."""
    if not ids:
        return True
    try:
        anyv = EpisodeFilter(include_archived=True)
        for s in await vectors.search(session_id, query_vector, anyv, len(ids), within=ids):
            cosine[s.id] = s.score
    except StoreUnavailableError as exc:
        log.warning("cosine of candidates outside the dense hits unavailable: %s", exc)
        return False
    return True


@dataclass(frozen=True, slots=True)
class LearnedKind(Generic[Memory]):
    """One kind's side of feedback: the learning store is keyed by memory id alone; a
    kind adds how to read its memories, where its FSRS state lives and how to write a
    changed one back.

    ``vector_learning`` marks the kind whose vectors the FF encoder scores and
    reconsolidation moves: the encoder's goodness is an episode ranking feature, so only
    episodes train it and have their vectors moved.
    """

    kind: MemoryType
    load: Callable[[str, Sequence[UUID]], Awaitable[Mapping[UUID, Memory]]]
    save: Callable[[str, Sequence[Memory]], Awaitable[None]]
    # The memory's FSRS state; None for a kind without one (every kind has one today).
    fsrs_of: Callable[[Memory], FSRSState | None]
    # A copy of the memory carrying the reviewed FSRS state and the learned value.
    learned: Callable[[Memory, FSRSState | None, float], Memory]
    vector_learning: bool = False
    payload: Callable[[Memory], dict[str, Any]] | None = None
