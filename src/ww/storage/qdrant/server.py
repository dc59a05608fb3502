"""Server-tier vector index: a Qdrant server reached through ``qdrant-client``.

One collection per memory type (``ww_episodes``, later ``ww_entities``, ``ww_skills``); every
session shares it and is kept apart by a ``session_id`` payload filter on every call, exactly
as in the embedded Qdrant Edge index. The contract suite runs this class with the client in
local mode (same calls, in-process engine), and compares its results with Qdrant Edge's.
"""

from __future__ import annotations

from collections.abc import Awaitable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar
from uuid import UUID

import httpx
import numpy as np
from qdrant_client import AsyncQdrantClient, models
from qdrant_client.http.exceptions import ResponseHandlingException, UnexpectedResponse

from ww.storage.ports import ScoredId, StoreUnavailableError, Vector, VectorItem
from ww.storage.qdrant.filters import QdrantFilters
from ww.storage.vector_base import (
    ACORN_EF,
    GRAPH_FIELDS,
    PART_OF,
    PAYLOAD_INDEXES,
    Fetch,
    NothingToOptimize,
    Search,
    VectorIndexBase,
    as_uuid,
    is_main_of,
    memory_of,
)

__all__ = ["QdrantServerIndex"]

T = TypeVar("T")

COMPONENT = "qdrant"


# The same payload indexes as the Edge shard. ``session_id`` is the tenant key: every query
# filters on it, so the server groups each tenant's points together on disk. Only
# ``GRAPH_FIELDS`` get HNSW links of their own (``ww.storage.vector_base``).
def _index_params(field: str, integer: bool) -> Any:
    if field == "session_id":
        return models.KeywordIndexParams(type=models.KeywordIndexType.KEYWORD, is_tenant=True)
    linked = field in GRAPH_FIELDS
    if integer:
        return models.IntegerIndexParams(
            type=models.IntegerIndexType.INTEGER, lookup=True, range=True, enable_hnsw=linked
        )
    return models.KeywordIndexParams(type=models.KeywordIndexType.KEYWORD, enable_hnsw=linked)


_PAYLOAD_INDEXES: tuple[tuple[str, Any], ...] = tuple(
    (field, _index_params(field, integer)) for field, integer in PAYLOAD_INDEXES
)
_ACORN = models.SearchParams(acorn=models.AcornSearchParams(enable=True))
_ACORN_WIDE = models.SearchParams(hnsw_ef=ACORN_EF, acorn=models.AcornSearchParams(enable=True))
_SCROLL_PAGE = 10_000


_F = QdrantFilters(
    models,
    range_type=models.Range,
    has_ids=lambda ids: models.HasIdCondition(has_id=sorted({str(i) for i in ids})),
    is_empty=lambda key: models.IsEmptyCondition(is_empty=models.PayloadField(key=key)),
)


class QdrantServerIndex(VectorIndexBase, NothingToOptimize):
    """``VectorIndex`` on one collection of a Qdrant server (or of qdrant-client local mode).

    Give ``url`` (and ``api_key``) for a server; ``location=":memory:"`` or ``path`` run the
    client's local mode, which the tests use as a stand-in for the server.
    """

    def __init__(
        self,
        dimension: int,
        *,
        url: str | None = None,
        api_key: str | None = None,
        location: str | None = None,
        path: Path | None = None,
        prefix: str = "ww",
        memory_type: str = "episodes",
        hnsw_m: int = 16,
        hnsw_ef_construct: int = 100,
        on_disk: bool = False,
        timeout_s: float = 10.0,
    ) -> None:
        if sum(x is not None for x in (url, location, path)) != 1:
            raise ValueError("give exactly one of url, location or path")
        self._dimension = dimension
        self._url = url
        self._api_key = api_key
        self._location = location
        self._path = path
        self.collection = f"{prefix}_{memory_type}"
        self._hnsw = models.HnswConfigDiff(
            m=hnsw_m, ef_construct=hnsw_ef_construct, on_disk=on_disk
        )
        self._on_disk = on_disk
        self._timeout_s = timeout_s
        self._client: AsyncQdrantClient | None = None
        self._closed = False

    def _where(self) -> str:
        return self._url or self._location or str(self._path)

    async def _call(self, awaitable: Awaitable[T]) -> T:
        """Await a client call, turning "the server cannot answer" into StoreUnavailableError.

        A 4xx other than auth is a bug in this module and propagates as it is.
        """
        try:
            return await awaitable
        except UnexpectedResponse as exc:
            status = exc.status_code or 0
            if status in (401, 403) or status >= 500:
                raise StoreUnavailableError(COMPONENT, f"{self._where()}: {exc}") from exc
            raise
        except (ResponseHandlingException, httpx.HTTPError, OSError) as exc:
            raise StoreUnavailableError(COMPONENT, f"{self._where()}: {exc}") from exc

    def _require(self) -> AsyncQdrantClient:
        if self._closed or self._client is None:
            raise StoreUnavailableError(COMPONENT, "index is closed")
        return self._client

    async def open(self) -> None:
        if self._url is not None:
            client = AsyncQdrantClient(
                url=self._url,
                api_key=self._api_key,
                timeout=int(max(1, self._timeout_s)),
                # The check is a request at construction whose failure only warns; the
                # first real call below reports an unreachable server as unavailable, and
                # the image pinned in docker-compose.yml is kept within one minor of the
                # client by tests/deploy.
                check_compatibility=False,
            )
        elif self._location is not None:
            client = AsyncQdrantClient(location=self._location)
        else:
            client = AsyncQdrantClient(path=str(self._path))
        self._client = client
        try:
            await self._ensure_collection(client)
        except BaseException:
            self._client = None
            await client.close()
            raise

    async def _ensure_collection(self, client: AsyncQdrantClient) -> None:
        if await self._call(client.collection_exists(self.collection)):
            info = await self._call(client.get_collection(self.collection))
            size = _vector_size(info)
            if size != self._dimension:
                raise RuntimeError(
                    f"Qdrant collection {self.collection!r} at {self._where()} holds vectors of "
                    f"dimension {size}, not {self._dimension}"
                )
        else:
            await self._call(
                client.create_collection(
                    self.collection,
                    vectors_config=models.VectorParams(
                        size=self._dimension,
                        distance=models.Distance.COSINE,
                        on_disk=self._on_disk,
                    ),
                    hnsw_config=self._hnsw,
                    on_disk_payload=self._on_disk,
                )
            )
        if self._url is None:
            # Local mode has no payload indexes (it scans) and warns on every request for one.
            return
        for field, schema in _PAYLOAD_INDEXES:
            await self._call(
                client.create_payload_index(
                    self.collection, field_name=field, field_schema=schema, wait=True
                )
            )

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._client is not None:
            client, self._client = self._client, None
            await client.close()

    async def check(self) -> None:
        client = self._require()
        await self._call(client.get_collection(self.collection))

    async def _upsert(self, session_id: str, items: Sequence[VectorItem]) -> None:
        points = [
            models.PointStruct(
                id=str(i.id), vector=i.vector.astype(float).tolist(), payload=i.payload
            )
            for i in items
        ]
        client = self._require()
        # wait=True: the engine marks a record indexed only once its vector is searchable.
        await self._call(client.upsert(self.collection, points=points, wait=True))

    async def _delete_parts_beyond(self, session_id: str, keep: Mapping[UUID, int]) -> None:
        await self._delete_where(_F.parts_beyond(session_id, keep))

    def _searcher(self, q: Search) -> Fetch:
        query_filter = _F.search(q)
        query = q.vector.astype(float).tolist()
        # Local mode scans every point and has no use for ACORN.
        params = None
        if q.needs_acorn and self._url is not None:
            params = _ACORN_WIDE if q.wide_beam else _ACORN

        async def fetch(n: int) -> list[ScoredId]:
            client = self._require()
            response = await self._call(
                client.query_points(
                    self.collection,
                    query=query,
                    query_filter=query_filter,
                    search_params=params,
                    limit=n,
                    with_payload=[PART_OF],
                    with_vectors=False,
                )
            )
            return [ScoredId(memory_of(p.id, p.payload), float(p.score)) for p in response.points]

        return fetch

    async def _get_vectors(self, session_id: str, ids: Sequence[UUID]) -> dict[UUID, Vector]:
        client = self._require()
        records = await self._call(
            client.retrieve(
                self.collection,
                ids=[str(i) for i in dict.fromkeys(ids)],
                with_payload=["session_id", PART_OF],
                with_vectors=True,
            )
        )
        out: dict[UUID, Vector] = {}
        for rec in records:
            if is_main_of(session_id, rec.payload) and rec.vector:
                out[as_uuid(rec.id)] = np.asarray(rec.vector, dtype=np.float32)
        return out

    async def _set_payload(self, session_id: str, item_id: UUID, payload: dict[str, Any]) -> None:
        client = self._require()
        selector = models.FilterSelector(filter=_F.of_memories(session_id, [item_id]))
        await self._call(
            client.set_payload(self.collection, payload=payload, points=selector, wait=True)
        )

    async def _delete(self, session_id: str, ids: Sequence[UUID]) -> None:
        await self._delete_where(_F.of_memories(session_id, ids))

    async def delete_session(self, session_id: str) -> None:
        await self._delete_where(_F.session(session_id))

    async def _delete_where(self, flt: models.Filter) -> None:
        client = self._require()
        selector = models.FilterSelector(filter=flt)
        await self._call(client.delete(self.collection, points_selector=selector, wait=True))

    async def ids(self, session_id: str) -> set[UUID]:
        client = self._require()
        found: set[UUID] = set()
        offset: Any = None
        while True:
            records, offset = await self._call(
                client.scroll(
                    self.collection,
                    scroll_filter=_F.mains(session_id),
                    limit=_SCROLL_PAGE,
                    offset=offset,
                    with_payload=False,
                    with_vectors=False,
                )
            )
            found.update(as_uuid(r.id) for r in records)
            if offset is None:
                return found

    async def count(self, session_id: str) -> int:
        client = self._require()
        result = await self._call(
            client.count(self.collection, count_filter=_F.mains(session_id), exact=True)
        )
        return int(result.count)


def _vector_size(info: models.CollectionInfo) -> int | None:
    vectors = info.config.params.vectors
    if isinstance(vectors, models.VectorParams):
        return vectors.size
    return None
