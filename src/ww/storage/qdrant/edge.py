"""Embedded vector index: one Qdrant Edge shard in-process, filtered by payload indexes.

Qdrant Edge 0.9's shard is driven from one dedicated thread. ``optimize()`` (the HNSW
build) holds the GIL while it runs, so the engine schedules it only when writes have gone
quiet; until a segment is indexed, search is an exact scan of it.

Every write lands in memory-mapped files (the WAL's 32 MB segments, 32 MB vector chunks,
4 MB payload-index pages), which are sparse: a write into a page the file system can no
longer back is a SIGBUS that kills the process, not an error. So each update first asks
the ``DiskGuard`` whether the data directory is above its free-space watermark.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar
from uuid import UUID

import numpy as np
import qdrant_edge as qe

from ww.storage.diskspace import DiskGuard, is_disk_full
from ww.storage.ports import ScoredId, StoreUnavailableError, Vector, VectorItem
from ww.storage.qdrant.filters import QdrantFilters
from ww.storage.vector_base import (
    ACORN_EF,
    GRAPH_FIELDS,
    PART_OF,
    PAYLOAD_INDEXES,
    Fetch,
    Search,
    VectorIndexBase,
    as_uuid,
    is_main_of,
    memory_of,
)

__all__ = ["QdrantEdgeIndex"]

T = TypeVar("T")


def _index_params(field: str, integer: bool) -> Any:
    if field == "session_id":  # every query's filter: points kept together by session
        return qe.KeywordIndexParams(is_tenant=True)
    linked = field in GRAPH_FIELDS
    if integer:
        return qe.IntegerIndexParams(lookup=True, range=True, enable_hnsw=linked)
    return qe.KeywordIndexParams(enable_hnsw=linked)


# A data directory made before GRAPH_FIELDS keeps its segments' extra links until the
# optimiser rebuilds them; its payload indexes are rebuilt with these parameters on its
# first open (about 1 s at 60k points; no vector is touched).
_PAYLOAD_INDEXES: tuple[tuple[str, Any], ...] = tuple(
    (field, _index_params(field, integer)) for field, integer in PAYLOAD_INDEXES
)
_ACORN = qe.SearchParams(acorn=qe.AcornSearchParams(enable=True))
_ACORN_WIDE = qe.SearchParams(hnsw_ef=ACORN_EF, acorn=qe.AcornSearchParams(enable=True))
_SCROLL_PAGE = 10_000
_OWNER = ("session_id", PART_OF)


_F = QdrantFilters(
    qe,
    range_type=qe.RangeFloat,
    has_ids=lambda ids: qe.HasIdCondition({str(i) for i in ids}),
    is_empty=qe.IsEmptyCondition,
)


def _allocated_mb(path: Path) -> float:
    """The space ``path``'s files take on disk (not their sparse apparent size)."""
    total = 0
    for f in path.rglob("*"):
        try:
            total += f.lstat().st_blocks * 512
        except OSError:  # removed by the optimiser meanwhile
            continue
    return total / (1024 * 1024)


class QdrantEdgeIndex(VectorIndexBase):
    """``VectorIndex`` on a Qdrant Edge shard stored in ``path``."""

    def __init__(
        self,
        path: Path,
        dimension: int,
        *,
        indexing_threshold_kb: int | None = None,
        full_scan_threshold_kb: int | None = None,
        disk: DiskGuard | None = None,
    ) -> None:
        self._path = Path(path)
        self._disk = disk.attach() if disk is not None else None
        self._dimension = dimension
        # Segments smaller than this (Qdrant's default: 10 MB) stay unindexed: exact scan.
        self._indexing_threshold_kb = indexing_threshold_kb
        # A filter that leaves fewer points than this (Qdrant's default: 10 MB of vectors)
        # is served by a scan of those points, not the graph.
        self._full_scan_threshold_kb = full_scan_threshold_kb
        self._shard: Any = None
        self._closed = False
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ww-qdrant-edge")

    async def _run(self, fn: Callable[[Any], T]) -> T:
        def call() -> T:
            if self._shard is None:
                raise StoreUnavailableError("qdrant_edge", "index is closed")
            try:
                return fn(self._shard)
            except StoreUnavailableError:
                raise
            except (OSError, RuntimeError) as exc:
                if self._disk is not None and is_disk_full(exc):
                    raise self._disk.full("qdrant_edge", exc) from exc
                raise StoreUnavailableError("qdrant_edge", str(exc)) from exc

        if self._closed:
            raise StoreUnavailableError("qdrant_edge", "store is closed")
        return await asyncio.get_running_loop().run_in_executor(self._executor, call)

    async def _update(self, op: Any, extra_mb: float = 0.0) -> None:
        # Checked here, on the caller's task, where ``diskspace.freeing()`` is visible.
        if self._disk is not None:
            self._disk.check("qdrant_edge", extra_mb)
        # A callable is built on the index's thread: a batch's points are many floats.
        await self._run(lambda s: s.update(op() if callable(op) else op))

    async def open(self) -> None:
        def load() -> None:
            optimizers = None
            if self._indexing_threshold_kb is not None:
                optimizers = qe.EdgeOptimizersConfig(indexing_threshold=self._indexing_threshold_kb)
            hnsw = None
            if self._full_scan_threshold_kb is not None:
                hnsw = qe.HnswIndexConfig(  # Qdrant's defaults but for the threshold
                    m=16, ef_construct=100, full_scan_threshold=self._full_scan_threshold_kb
                )
            config = qe.EdgeConfig(
                vectors=qe.EdgeVectorParams(
                    size=self._dimension, distance=qe.Distance.Cosine, hnsw_config=hnsw
                ),
                optimizers=optimizers,
            )
            if (self._path / "edge_config.json").exists() or any(self._path.glob("segments*")):
                try:
                    shard = qe.EdgeShard.load(str(self._path), config)
                except Exception as exc:
                    raise RuntimeError(
                        f"vector index at {self._path} does not match dimension "
                        f"{self._dimension}: {exc}"
                    ) from exc
            else:
                self._path.mkdir(parents=True, exist_ok=True)
                shard = qe.EdgeShard.create(str(self._path), config)
            for field, schema in _PAYLOAD_INDEXES:
                shard.update(qe.UpdateOperation.create_field_index(field, schema))
            self._shard = shard

        await asyncio.get_running_loop().run_in_executor(self._executor, load)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True

        def shut() -> None:
            if self._shard is not None:
                self._shard.flush()
                self._shard.close()
                self._shard = None

        await asyncio.get_running_loop().run_in_executor(self._executor, shut)
        self._executor.shutdown(wait=True)

    async def check(self) -> None:
        await self._run(lambda s: s.info())

    async def _upsert(self, session_id: str, items: Sequence[VectorItem]) -> None:
        def op() -> Any:
            return qe.UpdateOperation.upsert_points(
                [
                    qe.Point(
                        id=str(i.id), vector=i.vector.astype(float).tolist(), payload=i.payload
                    )
                    for i in items
                ]
            )

        await self._update(op)

    async def _delete_parts_beyond(self, session_id: str, keep: Mapping[UUID, int]) -> None:
        flt = _F.parts_beyond(session_id, keep)
        await self._update(qe.UpdateOperation.delete_points_by_filter(flt))

    def _searcher(self, q: Search) -> Fetch:
        query_filter = _F.search(q)
        query = qe.Query.Nearest(q.vector.astype(float).tolist())
        params = (_ACORN_WIDE if q.wide_beam else _ACORN) if q.needs_acorn else None

        async def fetch(n: int) -> list[ScoredId]:
            request = qe.QueryRequest(
                limit=n, query=query, filter=query_filter, with_payload=[PART_OF], params=params
            )
            hits = await self._run(lambda s: s.query(request))
            return [ScoredId(memory_of(h.id, h.payload), float(h.score)) for h in hits]

        return fetch

    async def _get_vectors(self, session_id: str, ids: Sequence[UUID]) -> dict[UUID, Vector]:
        keys = [str(i) for i in dict.fromkeys(ids)]

        def fetch(s: Any) -> dict[UUID, Vector]:
            out: dict[UUID, Vector] = {}
            for rec in s.retrieve(keys, with_payload=list(_OWNER), with_vector=True):
                if is_main_of(session_id, rec.payload) and rec.vector:
                    out[as_uuid(rec.id)] = np.asarray(rec.vector, dtype=np.float32)
            return out

        return await self._run(fetch)

    async def _set_payload(self, session_id: str, item_id: UUID, payload: dict[str, Any]) -> None:
        flt = _F.of_memories(session_id, [item_id])
        await self._update(qe.UpdateOperation.set_payload_by_filter(flt, payload))

    async def _delete(self, session_id: str, ids: Sequence[UUID]) -> None:
        flt = _F.of_memories(session_id, ids)
        await self._update(qe.UpdateOperation.delete_points_by_filter(flt))

    async def delete_session(self, session_id: str) -> None:
        flt = _F.session(session_id)
        await self._update(qe.UpdateOperation.delete_points_by_filter(flt))

    async def ids(self, session_id: str) -> set[UUID]:
        def scan(s: Any) -> set[UUID]:
            found: set[UUID] = set()
            offset: Any = None
            while True:
                records, offset = s.scroll(
                    qe.ScrollRequest(
                        offset=offset,
                        limit=_SCROLL_PAGE,
                        filter=_F.mains(session_id),
                        with_payload=False,
                        with_vector=False,
                    )
                )
                found.update(as_uuid(r.id) for r in records)
                if offset is None:
                    return found

        return await self._run(scan)

    async def count(self, session_id: str) -> int:
        request = qe.CountRequest(exact=True, filter=_F.mains(session_id))
        return int(await self._run(lambda s: s.count(request)))

    async def optimize(self) -> bool:
        if self._disk is not None:
            # The optimiser writes an indexed copy of a segment before dropping the old
            # one: it needs about the index's own size above the watermark.
            self._disk.check("qdrant_edge", _allocated_mb(self._path))
        return bool(await self._run(lambda s: s.optimize()))

    async def unindexed(self) -> int:
        """Points not yet in an HNSW index (drives when to optimise)."""
        info = await self._run(lambda s: s.info())
        return max(0, int(info.points_count) - int(info.indexed_vectors_count))
