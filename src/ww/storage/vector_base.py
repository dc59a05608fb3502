"""What every ``VectorIndex`` does the same way before its engine is reached.

The argument checks (an empty batch is a no-op, a payload of another session is refused)
and the search loop that puts hits in one order (``ww.storage.ranking``) are written once
here; a backend implements the ``_`` methods against its own client.

A memory's parts (``VectorItem.parts``) are points of their own, ids ``part_id(memory, k)``,
with the memory's payload plus ``part_of`` and ``part``. Writing them and removing the stale
ones, and folding part hits into one hit per memory for ``search``, are done here too; a
backend only has to report each hit under its memory's id (``memory_of``) and to reach a
memory's parts wherever it reaches the memory (set_payload, delete).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from uuid import UUID, uuid5

from ww.models import EpisodeFilter
from ww.storage.payload import filter_terms
from ww.storage.ports import PART_KEYS, ScoredId, Vector, VectorItem, check_vector_items
from ww.storage.ranking import top_hits

__all__ = [
    "ACORN_EF",
    "GRAPH_FIELDS",
    "PART",
    "PART_OF",
    "PAYLOAD_INDEXES",
    "WRITE_CHUNK",
    "Fetch",
    "NothingToOptimize",
    "Search",
    "VectorIndexBase",
    "as_uuid",
    "is_main_of",
    "memory_of",
    "part_id",
]

PART_OF, PART = PART_KEYS  # a part's memory id (str) and its number, 1 up

# The payload fields both Qdrant engines index, with their kind: every filter of
# ``ww.storage.payload.filter_terms`` and the session.
PAYLOAD_INDEXES: tuple[tuple[str, bool], ...] = (  # (field, holds an integer)
    ("session_id", False),
    ("memory_type", False),
    ("timestamp", True),
    ("outcome", False),
    ("project", False),
    ("speaker", False),
    ("archived", True),
    # set_payload and delete reach a memory's parts by it.
    (PART_OF, False),
)

# The fields (nearly) every search filters on. Only their values get links of their own in
# the HNSW graph, so a session's points stay connected however small a share of the index
# they are. Linking every indexed field's values too made the build twice as long and the
# session-filtered search twice as slow, for the same top 10 (docs/benchmarks.md, "Graph
# links per payload field"); a search that filters on another field asks for ACORN
# instead (``needs_acorn``), which costs it more in one big session.
GRAPH_FIELDS = frozenset({"session_id", "archived"})

# The beam of an ACORN search that filters on an unlinked field: a speaker with a tenth of
# a one-million-point session found 0.86 of its top 10 at Qdrant's default, 0.96 at 256
# (3.8 ms), 0.975 at 512 (6.0 ms). A search within named memories keeps Qdrant's default:
# the wide beam cost it 2.9-3.9 ms at 100k and 1M points for the same hits, and it asks for
# as many hits as it names memories, which sets the beam.
ACORN_EF = 256

# Points (main vectors and parts) per backend write: a batch of long memories has thousands
# of parts, more than one Qdrant request (32 MB) or Neo4j transaction should carry.
WRITE_CHUNK = 512

# The engine's top ``n`` hits (any order among equal scores), each under its memory's id:
# a memory whose parts match may come several times.
Fetch = Callable[[int], Awaitable[list[ScoredId]]]


@dataclass(frozen=True, slots=True)
class Search:
    """One ``VectorIndex.search`` call; ``within``, when not None, is never empty."""

    session_id: str
    vector: Vector
    flt: EpisodeFilter
    within: Collection[UUID] | None

    @property
    def needs_acorn(self) -> bool:
        """Whether the filter names a field outside ``GRAPH_FIELDS`` or ``within``'s ids:
        the graph has no links for them, and a search that skips the points that fail them
        can lose its way (top-10 recall 0.49 against 0.99 with ACORN for a speaker with 10%
        of a session). Qdrant scans the points instead where the filter leaves few."""
        return self.within is not None or self.wide_beam

    @property
    def wide_beam(self) -> bool:
        """Whether ACORN should search with ``ACORN_EF``: the filter names a field outside
        ``GRAPH_FIELDS`` (a search only ``within`` some memories keeps the default)."""
        return any(t.key not in GRAPH_FIELDS for t in filter_terms(self.flt))


def as_uuid(point_id: Any) -> UUID:
    return point_id if isinstance(point_id, UUID) else UUID(str(point_id))


def part_id(memory_id: UUID, k: int) -> UUID:
    """The point id of part ``k`` (1 up) of a memory: the same on every backend and write."""
    return uuid5(memory_id, str(k))


def memory_of(point_id: Any, payload: Mapping[str, Any] | None) -> UUID:
    """The memory a point belongs to: its ``part_of``, or the point itself."""
    owner = (payload or {}).get(PART_OF)
    return UUID(owner) if owner else as_uuid(point_id)


def is_main_of(session_id: str, payload: Mapping[str, Any] | None) -> bool:
    """Whether a point with this payload is a memory's main vector in the session."""
    return (
        payload is not None and payload.get("session_id") == session_id and PART_OF not in payload
    )


def _points(items: Sequence[VectorItem]) -> list[VectorItem]:
    """The items followed by each part as an item of its own (a backend ignores ``parts``)."""
    out: list[VectorItem] = []
    for item in items:
        out.append(item)
        out.extend(
            VectorItem(part_id(item.id, k), v, {**item.payload, PART_OF: str(item.id), PART: k})
            for k, v in enumerate(item.parts or (), start=1)
        )
    return out


def _by_memory(fetch: Fetch) -> Fetch:
    """``fetch`` with one hit per memory, at its best score, at least ``n`` of them while
    the engine has that many: the points are asked for in doubling numbers until they
    name ``n`` memories or run out.

    Every memory not among them scores at most the last point's score, which every memory
    among them reaches, so these memories are a true top (ties at the cut aside, which
    ``top_hits`` resolves by asking for more)."""

    async def grouped(n: int) -> list[ScoredId]:
        m = n
        while True:
            hits = await fetch(m)
            best: dict[UUID, float] = {}
            for h in hits:
                if h.score > best.get(h.id, float("-inf")):
                    best[h.id] = h.score
            if len(best) >= n or len(hits) < m:
                return [ScoredId(i, s) for i, s in best.items()]
            m *= 2

    return grouped


class VectorIndexBase:
    _dimension: int

    @property
    def dimension(self) -> int:
        return self._dimension

    async def upsert(self, session_id: str, items: Sequence[VectorItem]) -> None:
        if not items:
            return
        check_vector_items(session_id, items, self._dimension)
        # New parts first, stale ones after: a crash between the two leaves a memory with
        # more parts than it should have, never fewer. Every chunk is written before any
        # stale part goes, so a crash between chunks loses no part either.
        points = _points(items)
        for start in range(0, len(points), WRITE_CHUNK):
            await self._upsert(session_id, points[start : start + WRITE_CHUNK])
        await self._written(session_id)
        keep = {i.id: len(i.parts) for i in items if i.parts is not None}
        if keep:
            await self._delete_parts_beyond(session_id, keep)

    async def search(
        self,
        session_id: str,
        vector: Vector,
        flt: EpisodeFilter,
        limit: int,
        within: Collection[UUID] | None = None,
    ) -> list[ScoredId]:
        """Cosine similarity, best first, ties by id, each memory once at the best score of
        its vectors; ``within`` restricts the search to those memories."""
        # The filter is built (and a bad one refused) even when ``within`` is empty.
        fetch = self._searcher(Search(session_id, vector, flt, within or None))
        if within is not None and not within:
            return []
        return await top_hits(_by_memory(fetch), limit)

    async def get_vectors(self, session_id: str, ids: Sequence[UUID]) -> dict[UUID, Vector]:
        if not ids:
            return {}
        return await self._get_vectors(session_id, ids)

    async def set_payload(self, session_id: str, item_id: UUID, payload: dict[str, Any]) -> None:
        if payload.get("session_id", session_id) != session_id:
            raise ValueError("payload belongs to another session")
        if any(key in payload for key in PART_KEYS):
            raise ValueError("payload may not set part_of or part")
        await self._set_payload(session_id, item_id, payload)

    async def delete(self, session_id: str, ids: Sequence[UUID]) -> None:
        if not ids:
            return
        await self._delete(session_id, ids)

    # -- what a backend implements ----------------------------------------------------------
    async def _upsert(self, session_id: str, items: Sequence[VectorItem]) -> None:
        """Write the points (parts already split off, carrying ``part_of``/``part``)."""
        raise NotImplementedError

    async def _written(self, session_id: str) -> None:
        """After every point of an upsert is written (an engine's per-write upkeep)."""

    async def _delete_parts_beyond(self, session_id: str, keep: Mapping[UUID, int]) -> None:
        """Remove the parts numbered above ``keep[memory]`` of each memory."""
        raise NotImplementedError

    def _searcher(self, q: Search) -> Fetch:
        """The engine's search for ``q``."""
        raise NotImplementedError

    async def _get_vectors(self, session_id: str, ids: Sequence[UUID]) -> dict[UUID, Vector]:
        raise NotImplementedError

    async def _set_payload(self, session_id: str, item_id: UUID, payload: dict[str, Any]) -> None:
        """Merge ``payload`` into the memory's point and its parts'."""
        raise NotImplementedError

    async def _delete(self, session_id: str, ids: Sequence[UUID]) -> None:
        """Delete the memories' points and their parts'."""
        raise NotImplementedError


class NothingToOptimize:
    """For an engine with no index for the engine to build (a Qdrant server indexes in the
    background, Neo4j vectors are scanned): ``optimize`` has nothing to do, ``unindexed``
    is always 0, so the engine never schedules ``optimize``. Both still fail once closed."""

    def _require(self) -> object:
        raise NotImplementedError

    async def optimize(self) -> bool:
        self._require()
        return False

    async def unindexed(self) -> int:
        self._require()
        return 0
