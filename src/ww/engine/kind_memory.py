"""The lifecycle and learning side effects that entity and skill memory share.

Episodes' ``MemoryEngine`` owns the record store (it opens and closes it); every other kind
lives beside it with its own vector index and record port, opened, reconciled and emptied
the same way, and a recall with ``learn`` feeds the one recall log and feedback path.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, Protocol, TypeVar
from uuid import UUID

from ww.embedding import EmbeddingService
from ww.engine.dynamics import Fsrs
from ww.engine.kinds import KindStore, LearnedKind, ReconcileReport, Record, WriteProtocol
from ww.engine.memory import Clock, MemoryEngine, utc_now
from ww.engine.recall_learning import RecallLearning
from ww.models import FSRSState, MemoryType
from ww.storage.ports import RecordStore, Vector, VectorIndex
from ww.storage.ports.memories import AccessLog

__all__ = ["Beside", "KindPage", "StoredKind"]


class _Hit(Protocol):
    @property
    def id(self) -> UUID: ...


class _Reviewed(Record, Protocol):
    """A memory beside the episodes: its FSRS state is a field of the record."""

    @property
    def fsrs(self) -> FSRSState: ...


R = TypeVar("R", bound=_Reviewed)
F = TypeVar("F")  # the kind's list filter
R_co = TypeVar("R_co", covariant=True)


class KindPage(Protocol[R_co]):
    """A page of one kind's memories (``EntityPage``, ``SkillPage``)."""

    @property
    def items(self) -> Sequence[R_co]: ...
    @property
    def next_cursor(self) -> str | None: ...


class _Store(KindStore, AccessLog, Protocol):
    def delete_session(self, session_id: str) -> Awaitable[None]: ...


@dataclass(frozen=True, slots=True)
class Beside:
    """What a kind of memory shares with the engine it lives beside: the record database
    (sessions), the embedder, the clock, FSRS, the candidate count and the learning path."""

    records: RecordStore
    embedder: EmbeddingService
    clock: Clock = utc_now
    fsrs: Fsrs = field(default_factory=Fsrs)
    candidates: int = 50
    learning: RecallLearning | None = None

    @classmethod
    def engine(cls, engine: MemoryEngine) -> Beside:
        return cls(
            engine.records,
            engine.embedder,
            engine.clock,
            engine.fsrs,
            engine.candidates,
            engine.recall_learning,
        )


def _learned_kind(
    kind: MemoryType,
    load: Callable[[str, Sequence[UUID]], Awaitable[Mapping[UUID, R]]],
    save_one: Callable[[str, R], Awaitable[object]],
) -> LearnedKind[R]:
    """Feedback reviews the memory's FSRS state like an episode's; the value lives in the
    learning store (the kinds beside the episodes have no value column)."""

    async def save(session_id: str, memories: Sequence[R]) -> None:
        # A review is not an edit: no previous version is kept and no version bumped.
        for m in memories:
            await save_one(session_id, m)

    def learned(m: R, fsrs: FSRSState | None, _value: float) -> R:
        return m.model_copy(update={"fsrs": fsrs or m.fsrs})

    return LearnedKind(kind=kind, load=load, save=save, fsrs_of=lambda m: m.fsrs, learned=learned)


class StoredKind(Generic[R, F]):
    """Base of a kind of memory beside the episodes (entities, skills): its stores, its
    write protocol, and its place in the shared learning path. A kind passes what really
    differs: the text it embeds, the payload it filters on, how it lists pending records,
    inserts a new memory and pages its memories, and how feedback reads (``load``) and
    writes back (``save_one``: as it is, no previous version kept) its memories."""

    store: _Store  # each kind narrows it to its own port

    def __init__(
        self,
        *,
        name: str,
        store: _Store,
        vectors: VectorIndex,
        beside: Beside,
        text: Callable[[R], str],
        payload: Callable[[R], dict[str, Any]],
        pending: Callable[[str, int], Awaitable[Sequence[R]]],
        kind: MemoryType,
        insert: Callable[[str, R], Awaitable[None]],
        page: Callable[[str, F, int, str | None], Awaitable[KindPage[R]]],
        load: Callable[[str, Sequence[UUID]], Awaitable[Mapping[UUID, R]]],
        save_one: Callable[[str, R], Awaitable[object]],
    ) -> None:
        self.store = store
        self._insert, self._page, self._save_one = insert, page, save_one
        self.vectors = vectors
        self.records = beside.records
        self.embedder = beside.embedder
        self.clock = beside.clock
        self.candidates = beside.candidates
        self.fsrs = beside.fsrs
        # The shared recall log and feedback path (None: recall learns only access stats).
        learning = self.learning = beside.learning
        if learning is not None:
            learning.register(_learned_kind(kind, load, save_one))
        self.writes = WriteProtocol[R](
            name=name,
            store=store,
            vectors_of=lambda: self.vectors,
            embedder=beside.embedder,
            text=text,
            payload=payload,
            pending=lambda sid, n, _cutoff: pending(sid, n),
            ensure_session=beside.records.ensure_session,
            learning=learning.learning if learning is not None else None,
        )

    async def _create(self, session_id: str, memory: R, now: datetime) -> R:
        """One new record through the shared write protocol."""
        stored = await self.writes.create(
            session_id, [memory], now, lambda sid, ms: self._insert(sid, ms[0])
        )
        return stored[0]

    async def list_page(
        self, session_id: str, flt: F, limit: int, cursor: str | None
    ) -> KindPage[R]:
        """One page, newest first, of the memories ``flt`` lets through, and the cursor of
        the next."""
        return await self._page(session_id, flt, limit, cursor)

    async def restore(self, session_id: str, memories: Sequence[R], have: set[UUID]) -> None:
        """Store memories as an import gives them, before they are indexed: insert those
        whose id is not in ``have``, overwrite the others as they are (the history is
        imported with them, so no previous version is kept)."""
        for memory in memories:
            if memory.id in have:
                await self._save_one(session_id, memory)
            else:
                await self._insert(session_id, memory)

    async def open(self) -> ReconcileReport:
        await self.vectors.open()
        return await self.reconcile()

    async def close(self) -> None:
        await self.vectors.close()

    async def reconcile(self) -> ReconcileReport:
        """Index pending records, re-index those whose vector is missing, drop orphans."""
        return await self.writes.reconcile()

    async def delete_session(self, session_id: str) -> None:
        await self.vectors.delete_session(session_id)
        await self.store.delete_session(session_id)

    async def _after_recall(
        self,
        session_id: str,
        recall_id: UUID,
        query_vector: Vector,
        hits: Sequence[_Hit],
        now: datetime,
        log_recall: bool,
    ) -> None:
        """Access times for the lability window and eligibility trace, and the recall log
        entry feedback names (unless the caller logs several kinds' hits as one recall).
        CO_RETRIEVED edges are an episode feature, so none are made here."""
        if hits and self.learning is not None:
            await self.learning.after_recall(
                session_id,
                recall_id,
                query_vector,
                [h.id for h in hits],
                now,
                co_retrieved=(),
                log_recall=log_recall,
            )
