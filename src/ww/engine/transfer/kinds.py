"""The record kinds of an export, one small exporter/importer each.

A kind knows how to page its records out of one session through the ports, which other
records a record refers to, and how to write records back with the engine's write protocol
(record pending -> vector upserted -> record indexed). The driver in ``transfer.py`` handles
the file format, validation and batching, so adding a kind (learning state, say) means
writing one class here and listing it in ``KINDS`` after the kinds it refers to.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar, Protocol, TypeVar
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, field_validator

from ww.engine.activation import beta_success_rate
from ww.engine.kind_memory import StoredKind
from ww.engine.kinds import WriteProtocol
from ww.engine.memory import MemoryEngine
from ww.engine.procedural import ProceduralMemory
from ww.engine.semantic import SemanticMemory
from ww.models import Episode, EpisodeFilter, IndexState, UtcDatetime
from ww.models.procedural import Skill, SkillExecution, SkillVersion
from ww.models.semantic import Entity, EntityFilter, Relation
from ww.storage.ports import Vector, VectorIndex
from ww.storage.ports.entities import RelationExistsError
from ww.storage.ports.learning import EncoderBlob, HebbianEdge
from ww.storage.ports.memories import AccessLog
from ww.storage.ports.skills import SkillFilter

__all__ = [
    "KINDS",
    "EncoderKind",
    "EncoderRecord",
    "EntityKind",
    "EpisodeKind",
    "ExportItem",
    "HebbianEdgeKind",
    "HebbianEdgeRecord",
    "ImportItem",
    "Kind",
    "Memories",
    "RecordConflictError",
    "RelationKind",
    "SessionKind",
    "SessionRecord",
    "SkillExecutionKind",
    "SkillKind",
    "SkillVersionKind",
]


# Records per store call when paging out and per write batch when importing.
PAGE = 256
T_co = TypeVar("T_co", covariant=True)


@dataclass(frozen=True, slots=True)
class Memories:
    """Everything an export reads and an import writes."""

    engine: MemoryEngine
    semantic: SemanticMemory
    procedural: ProceduralMemory


@dataclass(frozen=True, slots=True)
class ExportItem:
    record: BaseModel
    vector: Vector | None = None
    access_times: list[datetime] | None = None


@dataclass(slots=True)
class ImportItem:
    line: int
    record: Any
    vector: Vector | None = None
    access_times: list[datetime] | None = None


class RecordConflictError(ValueError):
    """A record cannot be written because the store holds a conflicting one."""

    def __init__(self, line: int, message: str) -> None:
        super().__init__(message)
        self.line = line


def _strict(model: type[BaseModel]) -> type[BaseModel]:
    """``model`` refusing unknown fields: an unknown field in an import is a field the
    import would silently drop, so it is an error rather than lost data."""
    return type(
        f"Strict{model.__name__}",
        (model,),
        {"model_config": ConfigDict(extra="forbid"), "__module__": __name__},
    )


class SessionRecord(BaseModel):
    model_config = ConfigDict(extra="forbid")

    session_id: str
    created_at: UtcDatetime
    last_activity: UtcDatetime | None = None


class Kind:
    """One kind of line. Subclasses set the class attributes and override what they use.

    A new kind needs ``name``, ``model`` (what ``record`` holds; refuse unknown fields),
    ``pages`` and ``write``; ``key`` when its identity is not ``record.id``; ``refs`` when
    it points at other records, and then those kinds need ``existing``. Records without a
    ``session_id`` of their own take the line's.
    """

    name: ClassVar[str]
    model: ClassVar[type[BaseModel]]
    has_vector: ClassVar[bool] = False
    has_access_times: ClassVar[bool] = False
    # State that only means something in the vector space of the exporting model: an import
    # from another model (or dimension) skips these lines.
    model_bound: ClassVar[bool] = False
    # Fields of the record left out of its line: state that only describes this store.
    exclude: ClassVar[frozenset[str]] = frozenset({"index_state"})

    def key(self, record: Any) -> str:
        """Identity within a session: an import upserts by it, a file holds it once."""
        return str(record.id)

    def record_session(self, record: Any) -> str | None:
        """The session named inside the record, which must be the line's."""
        return getattr(record, "session_id", None)

    def refs(self, record: Any) -> list[tuple[str, str]]:
        """``(kind, key)`` of records this one needs: earlier in the file or in the store."""
        return []

    def check(self, record: Any) -> str | None:
        """What is wrong with a record that its model accepts, or None."""
        return None

    async def existing(self, mem: Memories, session_id: str, keys: Sequence[str]) -> set[str]:
        """Which ``keys`` the store holds in the session (to resolve references)."""
        raise NotImplementedError

    def embed_text(self, mem: Memories, record: Any) -> str:
        raise NotImplementedError

    def pages(
        self, mem: Memories, session_id: str, vectors: bool
    ) -> AsyncIterator[list[ExportItem]]:
        raise NotImplementedError

    async def write(self, mem: Memories, session_id: str, items: list[ImportItem]) -> int:
        """Upsert the records; return how many were left pending (vector index down)."""
        raise NotImplementedError


async def _attach_vectors(
    index: VectorIndex, session_id: str, records: Sequence[Any], wanted: bool
) -> dict[UUID, Vector]:
    if not wanted or not records:
        return {}
    return await index.get_vectors(session_id, [r.id for r in records])


class _Page(Protocol[T_co]):
    @property
    def items(self) -> Sequence[T_co]: ...
    @property
    def next_cursor(self) -> str | None: ...


async def _paged(
    fetch: Callable[[str | None], Awaitable[_Page[T_co]]],
) -> AsyncIterator[list[T_co]]:
    """Every page of a cursor-paged listing, in order."""
    cursor: str | None = None
    while True:
        page = await fetch(cursor)
        yield list(page.items)
        if page.next_cursor is None:
            return
        cursor = page.next_cursor


async def _items(
    fetch: Callable[[str | None], Awaitable[_Page[BaseModel]]],
) -> AsyncIterator[list[ExportItem]]:
    """Every page of a listing of records that carry nothing beside them (no vector, no
    access times), as export items."""
    async for records in _paged(fetch):
        yield [ExportItem(r) for r in records]


class _MemoryKind(Kind):
    """A kind of memory (episode, entity, skill): records with a vector each, written back
    through the memory's own write protocol. Subclasses say where the records live and set
    ``record_model``; ``model`` (the same, refusing unknown fields) and the embedded text
    follow from it and from the write protocol."""

    has_vector = True
    record_model: ClassVar[type[Any]]

    def __init_subclass__(cls) -> None:
        super().__init_subclass__()
        if "record_model" in cls.__dict__:
            cls.model = _strict(cls.record_model)

    def embed_text(self, mem: Memories, record: Any) -> str:
        # The text the kind's own writes embed: an import indexes a record as a create would.
        return self.writes(mem).text(record)

    def writes(self, mem: Memories) -> WriteProtocol[Any]:
        raise NotImplementedError

    def list_page(self, mem: Memories, session_id: str, cursor: str | None) -> Awaitable[Any]:
        raise NotImplementedError

    async def put(
        self, mem: Memories, session_id: str, records: list[Any], have: set[UUID]
    ) -> None:
        """Insert the records not in ``have`` and overwrite those that are."""
        raise NotImplementedError

    def access_log(self, mem: Memories) -> AccessLog | None:
        return None

    async def existing(self, mem: Memories, session_id: str, keys: Sequence[str]) -> set[str]:
        found = await self.writes(mem).store.existing_ids(session_id, [UUID(k) for k in keys])
        return {str(i) for i in found}

    async def pages(
        self, mem: Memories, session_id: str, vectors: bool
    ) -> AsyncIterator[list[ExportItem]]:
        index, access = self.writes(mem).vectors, self.access_log(mem)
        async for records in _paged(lambda c: self.list_page(mem, session_id, c)):
            vecs = await _attach_vectors(index, session_id, records, vectors)
            ids = [r.id for r in records]
            times = await access.access_times(session_id, ids) if access and ids else None
            yield [
                ExportItem(r, vecs.get(r.id), None if times is None else times.get(r.id, []))
                for r in records
            ]

    async def write(self, mem: Memories, session_id: str, items: list[ImportItem]) -> int:
        writes = self.writes(mem)
        records = [
            self.record_model.model_validate(
                i.record.model_dump() | {"index_state": IndexState.PENDING}
            )
            for i in items
        ]
        have = await writes.store.existing_ids(session_id, [r.id for r in records])
        await self.put(mem, session_id, records, have)
        access = self.access_log(mem)
        # A line without access times keeps what the store has (or the creation access).
        times = {
            r.id: i.access_times
            for r, i in zip(records, items, strict=True)
            if i.access_times is not None
        }
        if access is not None and times:
            await access.replace_access_times(session_id, times)
        # The export carries main vectors only: a long memory's parts come from its text.
        done: list[Any] = []
        async for some, embedded in writes.batches(records, [_vector(i) for i in items]):
            done += await writes.index(session_id, some, embedded)
        return sum(r.index_state != IndexState.INDEXED for r in done)


def _vector(item: ImportItem) -> Vector:
    # The driver fills every vector-bearing item's vector before write().
    assert item.vector is not None
    return item.vector


class SessionKind(Kind):
    name = "session"
    model = SessionRecord
    exclude = frozenset()

    def key(self, record: Any) -> str:
        return str(record.session_id)

    async def pages(
        self, mem: Memories, session_id: str, vectors: bool
    ) -> AsyncIterator[list[ExportItem]]:
        stats = await mem.engine.records.session_stats(session_id)
        if stats is not None:
            rec = SessionRecord(
                session_id=session_id,
                created_at=stats.created_at,
                last_activity=stats.last_activity,
            )
            yield [ExportItem(rec)]

    async def write(self, mem: Memories, session_id: str, items: list[ImportItem]) -> int:
        for item in items:
            rec: SessionRecord = item.record
            # Creates the session at its original time (kept if it exists), then sets
            # its last activity, so the copy reports the same statistics.
            await mem.engine.records.ensure_session(session_id, rec.created_at)
            if rec.last_activity is not None:
                await mem.engine.records.ensure_session(session_id, rec.last_activity)
        return 0


class EpisodeKind(_MemoryKind):
    name = "episode"
    record_model = Episode

    def writes(self, mem: Memories) -> WriteProtocol[Any]:
        return mem.engine.writes

    def list_page(self, mem: Memories, session_id: str, cursor: str | None) -> Awaitable[Any]:
        flt = EpisodeFilter(include_archived=True)
        return mem.engine.records.list_episodes(session_id, flt, PAGE, cursor)

    async def put(
        self, mem: Memories, session_id: str, records: list[Any], have: set[UUID]
    ) -> None:
        store = mem.engine.records
        await store.insert_episodes(session_id, [e for e in records if e.id not in have])
        for ep in records:
            if ep.id in have:
                await store.update_episode(session_id, ep)


class _BesideKind(_MemoryKind):
    """A kind of memory beside the episodes (entity, skill): its ``StoredKind`` has the
    store, the write protocol and the access log, and restores imported records."""

    has_access_times = True

    everything: ClassVar[object]  # the filter that lists every record (closed, deprecated)

    def memory(self, mem: Memories) -> StoredKind[Any, Any]:
        raise NotImplementedError

    def list_page(self, mem: Memories, session_id: str, cursor: str | None) -> Awaitable[Any]:
        return self.memory(mem).list_page(session_id, self.everything, PAGE, cursor)

    def writes(self, mem: Memories) -> WriteProtocol[Any]:
        return self.memory(mem).writes

    def access_log(self, mem: Memories) -> AccessLog:
        return self.memory(mem).store

    async def put(
        self, mem: Memories, session_id: str, records: list[Any], have: set[UUID]
    ) -> None:
        await self.memory(mem).restore(session_id, records, have)


class EntityKind(_BesideKind):
    name = "entity"
    record_model = Entity
    everything = EntityFilter(include_closed=True)

    def memory(self, mem: Memories) -> StoredKind[Any, Any]:
        return mem.semantic


class RelationKind(Kind):
    name = "relation"
    model = _strict(Relation)
    exclude = frozenset()

    def refs(self, record: Any) -> list[tuple[str, str]]:
        return [("entity", str(record.source_id)), ("entity", str(record.target_id))]

    def pages(
        self, mem: Memories, session_id: str, vectors: bool
    ) -> AsyncIterator[list[ExportItem]]:
        return _items(lambda c: mem.semantic.store.list_relations(session_id, PAGE, c))

    async def write(self, mem: Memories, session_id: str, items: list[ImportItem]) -> int:
        store = mem.semantic.store
        for item in items:
            rel = Relation.model_validate(item.record.model_dump())
            current = await store.get_relation(session_id, rel.id)
            if current == rel:
                continue
            if current is not None:
                # The port has no update for relations: replace it.
                await store.delete_relation(session_id, rel.id)
            try:
                await store.insert_relation(session_id, rel)
            except RelationExistsError as exc:
                raise RecordConflictError(item.line, str(exc)) from exc
        return 0


class SkillKind(_BesideKind):
    name = "skill"
    record_model = Skill
    everything = SkillFilter(include_deprecated=True)

    def check(self, record: Any) -> str | None:
        # The store derives the rate from the counts; a rate that disagrees would be lost.
        expected = beta_success_rate(record.successes, record.failures)
        if abs(record.success_rate - expected) > 1e-9:
            return f"success_rate {record.success_rate} does not match the counts ({expected})"
        return None

    def memory(self, mem: Memories) -> StoredKind[Any, Any]:
        return mem.procedural


class _StrictSkillVersion(SkillVersion):
    model_config = ConfigDict(extra="forbid")


class SkillVersionKind(Kind):
    """A previous version of a skill, as its update left it (the snapshot is kept whole)."""

    name = "skill_version"
    model = _StrictSkillVersion
    exclude = frozenset()

    def key(self, record: Any) -> str:
        return f"{record.skill.id}@{record.version}"

    def record_session(self, record: Any) -> str | None:
        return str(record.skill.session_id)

    def refs(self, record: Any) -> list[tuple[str, str]]:
        return [("skill", str(record.skill.id))]

    def check(self, record: Any) -> str | None:
        if record.version != record.skill.version:
            return f"version {record.version} differs from its snapshot's {record.skill.version}"
        return None

    async def pages(
        self, mem: Memories, session_id: str, vectors: bool
    ) -> AsyncIterator[list[ExportItem]]:
        store = mem.procedural.store
        flt = SkillFilter(include_deprecated=True)
        async for skills in _paged(lambda c: store.list_skills(session_id, flt, PAGE, c)):
            batch: list[ExportItem] = []
            for skill in skills:
                batch += [ExportItem(v) for v in await store.versions(session_id, skill.id)]
            yield batch

    async def write(self, mem: Memories, session_id: str, items: list[ImportItem]) -> int:
        versions = [SkillVersion.model_validate(i.record.model_dump()) for i in items]
        await mem.procedural.store.restore_versions(session_id, versions)
        return 0


class SkillExecutionKind(Kind):
    name = "skill_execution"
    model = _strict(SkillExecution)
    exclude = frozenset()

    def refs(self, record: Any) -> list[tuple[str, str]]:
        return [("skill", str(record.skill_id))]

    def pages(
        self, mem: Memories, session_id: str, vectors: bool
    ) -> AsyncIterator[list[ExportItem]]:
        return _items(lambda c: mem.procedural.store.list_executions(session_id, PAGE, c))

    async def write(self, mem: Memories, session_id: str, items: list[ImportItem]) -> int:
        executions = [SkillExecution.model_validate(i.record.model_dump()) for i in items]
        await mem.procedural.store.restore_executions(session_id, executions)
        return 0


class HebbianEdgeRecord(BaseModel):
    model_config = ConfigDict(extra="forbid")

    a: UUID
    b: UUID
    weight: float
    last_strengthened: UtcDatetime


class HebbianEdgeKind(Kind):
    """A CO_RETRIEVED edge of the learning store (undirected: ``a < b`` as strings)."""

    name = "hebbian_edge"
    model = HebbianEdgeRecord
    exclude = frozenset()

    def key(self, record: Any) -> str:
        a, b = HebbianEdge.key(record.a, record.b)
        return f"{a}|{b}"

    def check(self, record: Any) -> str | None:
        return "an edge needs two different memories" if record.a == record.b else None

    async def pages(
        self, mem: Memories, session_id: str, vectors: bool
    ) -> AsyncIterator[list[ExportItem]]:
        # The port lists a session's edges at once (consolidation sweeps them the same way).
        edges = await mem.engine.learning.session_edges(session_id)
        for start in range(0, len(edges), PAGE):
            yield [
                ExportItem(HebbianEdgeRecord(**{f: getattr(e, f) for f in _EDGE_FIELDS}))
                for e in edges[start : start + PAGE]
            ]

    async def write(self, mem: Memories, session_id: str, items: list[ImportItem]) -> int:
        edges = [HebbianEdge(**{f: getattr(i.record, f) for f in _EDGE_FIELDS}) for i in items]
        await mem.engine.learning.upsert_edges(session_id, edges)
        return 0


_EDGE_FIELDS = ("a", "b", "weight", "last_strengthened")


class EncoderRecord(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: int = Field(ge=1)
    weights: str = Field(description="The encoder's blob (ff_encoder.py format), base64.")

    @field_validator("weights")
    @classmethod
    def _base64(cls, value: str) -> str:
        try:
            base64.b64decode(value, validate=True)
        except binascii.Error as exc:
            raise ValueError(f"weights must be base64: {exc}") from None
        return value


class EncoderKind(Kind):
    """The session's Forward-Forward encoder, trained on the exporting model's vectors."""

    name = "ff_encoder"
    model = EncoderRecord
    exclude = frozenset()
    model_bound = True

    def key(self, record: Any) -> str:
        return "ff_encoder"

    async def pages(
        self, mem: Memories, session_id: str, vectors: bool
    ) -> AsyncIterator[list[ExportItem]]:
        blob = await mem.engine.learning.load_encoder(session_id)
        if blob is not None:
            weights = base64.b64encode(blob.weights).decode()
            yield [ExportItem(EncoderRecord(version=blob.version, weights=weights))]

    async def write(self, mem: Memories, session_id: str, items: list[ImportItem]) -> int:
        learning = mem.engine.learning
        for item in items:
            blob = EncoderBlob(item.record.version, base64.b64decode(item.record.weights))
            current = await learning.load_encoder(session_id)
            if current == blob:
                continue
            expected = 0 if current is None else current.version
            if not await learning.save_encoder(session_id, blob, expected):
                raise RecordConflictError(item.line, "the encoder changed during the import")
        return 0


# In file order: a kind comes after every kind its records refer to.
KINDS: tuple[Kind, ...] = (
    SessionKind(),
    EpisodeKind(),
    EntityKind(),
    RelationKind(),
    SkillKind(),
    SkillVersionKind(),
    SkillExecutionKind(),
    HebbianEdgeKind(),
    EncoderKind(),
)
