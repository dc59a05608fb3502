"""One store per backend for every kind of memory: what a kind declares, and the port names.

Entities and skills share their whole storage protocol (create, read, page, keyword index,
access log, index state, delete); a kind only names its table/label and maps its model to
columns. The column encoding is the SQLite one (integer microseconds, JSON text) on every
backend, so a memory round-trips exactly and the page cursors have one format.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from typing import Any, Generic, ParamSpec, Protocol, TypeVar, cast
from uuid import UUID

from ww.models import Episode, EpisodeFilter, FSRSState
from ww.models.procedural import Skill
from ww.models.semantic import Entity, EntityFilter
from ww.storage.index_state import IndexStateMarks
from ww.storage.payload import to_micros
from ww.storage.ports import EpisodePage
from ww.storage.ports.entities import EntityPage
from ww.storage.ports.skills import SkillFilter, SkillPage
from ww.storage.sqlite.rows import decode_cursor, episode_order

__all__ = [
    "ACCESS_COLUMNS",
    "ACCESS_CYPHER",
    "ACCESS_SQL",
    "Access",
    "EntityMethods",
    "EpisodePages",
    "Memory",
    "MemoryKind",
    "MemoryStoreCore",
    "SkillMethods",
    "access_row",
    "cut_page",
    "encode_key",
    "fetch_page",
    "late",
    "page_after",
]


class Memory(Protocol):
    @property
    def id(self) -> UUID: ...
    @property
    def session_id(self) -> str: ...
    @property
    def created_at(self) -> datetime: ...


M = TypeVar("M", bound=Memory)


@dataclass(frozen=True, slots=True)
class MemoryKind(Generic[M]):
    key: str  # short tag in the per-session keyword index names
    noun: str  # for error messages
    table: str  # SQLite table
    label: str  # Neo4j node label
    columns: str  # comma-separated, ``id, session_id`` first
    order: str  # the column pages run along, newest first
    from_row: Callable[[Any], M]  # a sqlite3.Row or a dict of the same columns
    to_params: Callable[[M], tuple[Any, ...]]  # in ``columns`` order
    keyword_text: Callable[[M], str]
    names: tuple[str, ...] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "names", tuple(c.strip() for c in self.columns.split(",")))

    def order_value(self, memory: M) -> int:
        """The ``order`` column of ``memory``, encoded as it is stored."""
        value: int = self.to_params(memory)[self.names.index(self.order)]
        return value


class Access(Protocol):
    """What a recall with learning changes on one memory (``AccessUpdate``, ``EntityAccess``)."""

    @property
    def id(self) -> UUID: ...
    @property
    def fsrs(self) -> FSRSState: ...
    @property
    def access_count(self) -> int: ...
    @property
    def last_accessed(self) -> datetime: ...


ACCESS_COLUMNS = (
    "stability",
    "difficulty",
    "last_review",
    "reps",
    "lapses",
    "access_count",
    "last_accessed",
)


def access_row(u: Access) -> dict[str, Any]:
    """``ACCESS_COLUMNS`` of ``u`` as stored, and its ``id``."""
    return {
        "id": str(u.id),
        "stability": u.fsrs.stability,
        "difficulty": u.fsrs.difficulty,
        "last_review": to_micros(u.fsrs.last_review),
        "reps": u.fsrs.reps,
        "lapses": u.fsrs.lapses,
        "access_count": u.access_count,
        "last_accessed": to_micros(u.last_accessed),
    }


# ``SET`` clauses that store an ``access_row``: SQLite's named parameters, and a Cypher
# row ``u`` on node ``e``.
ACCESS_SQL = ", ".join(f"{c} = :{c}" for c in ACCESS_COLUMNS)
ACCESS_CYPHER = ", ".join(f"e.{c} = u.{c}" for c in ACCESS_COLUMNS)


class _HasId(Protocol):
    @property
    def id(self) -> UUID: ...


H = TypeVar("H", bound=_HasId)


def encode_key(ts: int, ident: str) -> str:
    """An opaque page cursor (the same shape the episode store's cursors decode from)."""
    raw = json.dumps([ts, ident]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def page_after(cursor: str | None) -> str:
    """The id a page in id order starts after (``""``: from the start)."""
    return "" if cursor is None else decode_cursor(cursor)[1]


def cut_page(
    found: Sequence[H], limit: int, key: Callable[[H], int] = lambda _: 0
) -> tuple[list[H], str | None]:
    """The page of ``found`` (fetched ``limit + 1`` long) and the cursor of the next one,
    at ``key`` (the order column as stored; 0 for pages in id order) and the id."""
    items = list(found[:limit])
    more = len(found) > limit and items
    return items, encode_key(key(items[-1]), str(items[-1].id)) if more else None


async def fetch_page(
    fetch: Callable[[int, tuple[int, str] | None], Awaitable[Sequence[H]]],
    limit: int,
    cursor: str | None,
    key: Callable[[H], int],
) -> tuple[list[H], str | None]:
    """One page, newest first, of what ``fetch(n, after)`` returns (up to ``n`` items past
    ``after``: the ``key`` value as stored, then the id), and the cursor of the next."""
    after = None if cursor is None else decode_cursor(cursor)
    return cut_page(await fetch(limit + 1, after), limit, key)


P = ParamSpec("P")
R = TypeVar("R")
F = TypeVar("F")


def late(method: Callable[P, R]) -> Callable[P, R]:
    """``method`` under a port's name, looked up on the instance when called, so that the
    backend's implementation is the one that runs."""
    name = method.__name__

    def call(self: Any, *args: Any, **kwargs: Any) -> Any:
        return getattr(self, name)(*args, **kwargs)

    return cast(Callable[P, R], call)


class MemoryStoreCore(IndexStateMarks, Generic[M, F]):
    """What every backend's memory store implements, under kind-neutral names; a kind's
    port names map onto these in ``EntityMethods`` and ``SkillMethods``."""

    _kind: MemoryKind[M]
    _everything: F  # the filter that lets every memory through

    async def _insert(self, session_id: str, memory: M) -> None:
        raise NotImplementedError

    async def _get(self, session_id: str, memory_id: UUID) -> M | None:
        return (await self._get_many(session_id, [memory_id])).get(memory_id)

    async def _get_many(self, session_id: str, ids: Sequence[UUID]) -> dict[UUID, M]:
        raise NotImplementedError

    async def _page(
        self, session_id: str, flt: F, limit: int, cursor: str | None
    ) -> tuple[list[M], str | None]:
        """One page along the kind's order, newest first, and the cursor of the next."""
        fetch = partial(self._page_rows, session_id, flt)
        return await fetch_page(fetch, limit, cursor, self._kind.order_value)

    async def _page_rows(
        self, session_id: str, flt: F, n: int, after: tuple[int, str] | None
    ) -> list[M]:
        """Up to ``n`` memories along the order, newest first, strictly past ``after``
        (the order value as stored, then the id)."""
        raise NotImplementedError

    async def _update(self, session_id: str, memory: M) -> bool:
        raise NotImplementedError

    async def _delete(self, session_id: str, memory_id: UUID) -> bool:
        raise NotImplementedError

    async def _pending(self, session_id: str, limit: int) -> list[M]:
        raise NotImplementedError

    async def _record_fsrs(self, session_id: str, updates: Sequence[Access], at: datetime) -> None:
        """Store each memory's review state after a recall and log the access."""
        raise NotImplementedError

    def _own(self, session_id: str, memory: M) -> None:
        if memory.session_id != session_id:
            raise ValueError(f"{self._kind.noun} belongs to another session")


_E = MemoryStoreCore[Entity, EntityFilter]
_S = MemoryStoreCore[Skill, SkillFilter]


class EntityMethods(_E):
    """The ``EntityStore`` names of the shared methods."""

    insert_entity = late(_E._insert)
    get_entity = late(_E._get)
    get_entities = late(_E._get_many)
    update_entity = late(_E._update)
    delete_entity = late(_E._delete)
    pending_entities = late(_E._pending)
    record_access = late(_E._record_fsrs)

    async def list_entities(
        self, session_id: str, flt: EntityFilter, limit: int, cursor: str | None
    ) -> EntityPage:
        return EntityPage(*await self._page(session_id, flt, limit, cursor))


class SkillMethods(_S):
    """The ``SkillStore`` names of the shared methods (``update_skill`` also keeps the
    replaced version, which each backend does its own way)."""

    insert_skill = late(_S._insert)
    get_skill = late(_S._get)
    get_skills = late(_S._get_many)
    delete_skill = late(_S._delete)
    pending_skills = late(_S._pending)
    record_access = late(_S._record_fsrs)

    async def list_skills(
        self, session_id: str, flt: SkillFilter, limit: int, cursor: str | None
    ) -> SkillPage:
        return SkillPage(*await self._page(session_id, flt, limit, cursor))


class EpisodePages:
    """``list_episodes`` on the backend's ``_episode_page``, newest ``timestamp`` first."""

    async def _episode_page(
        self, session_id: str, flt: EpisodeFilter, n: int, after: tuple[int, str] | None
    ) -> list[Episode]:
        raise NotImplementedError

    async def list_episodes(
        self, session_id: str, flt: EpisodeFilter, limit: int, cursor: str | None
    ) -> EpisodePage:
        fetch = partial(self._episode_page, session_id, flt)
        return EpisodePage(*await fetch_page(fetch, limit, cursor, episode_order))
