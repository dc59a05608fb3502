"""Every backend of a port runs the same contract suite: add a backend to the params."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.neo4j_launcher import Neo4jProcess, wipe_database
from ww.storage import QdrantEdgeIndex, RecordStore, SQLiteRecordStore, VectorIndex
from ww.storage.qdrant.server import QdrantServerIndex

DIM = 8


RECORD_BACKENDS = ["sqlite", "sqlite_memory", "neo4j"]


def make_record_store(kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> RecordStore:
    """A fresh, unopened record store of ``kind``; the side stores (entities, skills,
    learning, consolidation) share its database."""
    if kind == "sqlite":
        return SQLiteRecordStore(tmp_path / "ww.sqlite3")
    if kind == "sqlite_memory":  # one connection: reads share the writer's thread
        return SQLiteRecordStore(":memory:")
    if kind == "neo4j":  # one server for the run, emptied before each test
        from ww.storage.neo4j.records import Neo4jRecordStore

        server: Neo4jProcess = request.getfixturevalue("neo4j_server")
        wipe_database(server.uri)
        return Neo4jRecordStore(server.uri)
    raise ValueError(kind)


@pytest.fixture(params=RECORD_BACKENDS)
async def records(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[RecordStore]:
    store = make_record_store(request.param, request, tmp_path)
    await store.open()
    yield store
    await store.close()


@pytest.fixture(params=RECORD_BACKENDS)
async def side_records(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[RecordStore]:
    """A record store for a side store's contract suite to build its store on."""
    store = make_record_store(request.param, request, tmp_path)
    await store.open()
    yield store
    await store.close()


def make_vector_index(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest | None = None
) -> VectorIndex:
    """A fresh, unopened index of ``kind``.

    ``qdrant_local`` is the Qdrant server backend with qdrant-client in local mode: the same
    client calls as against a server, answered by the client's in-process engine. ``neo4j``
    (the run's test Neo4j, emptied first) needs ``request`` to reach that fixture.
    """
    if kind == "qdrant_edge":
        return QdrantEdgeIndex(tmp_path / "vectors", DIM)
    if kind == "qdrant_edge_hnsw":  # optimize() builds the graph of any segment, and a
        # filter that leaves more than 1 KB of vectors (32 points here) is searched in it
        return QdrantEdgeIndex(
            tmp_path / "vectors", DIM, indexing_threshold_kb=1, full_scan_threshold_kb=1
        )
    if kind == "qdrant_local":
        return QdrantServerIndex(DIM, location=":memory:")
    if kind == "qdrant_local_path":
        return QdrantServerIndex(DIM, path=tmp_path / "qdrant-local")
    if kind in ("neo4j", "neo4j_hnsw"):
        from ww.storage.neo4j.vectors import Neo4jVectorIndex

        assert request is not None, "the neo4j vector index needs the neo4j_server fixture"
        server: Neo4jProcess = request.getfixturevalue("neo4j_server")
        wipe_database(server.uri)
        # neo4j: every session small enough for the exact scan; neo4j_hnsw: every session
        # searched through its own HNSW index from its first vector.
        return Neo4jVectorIndex(server.uri, DIM, index_threshold=0 if kind == "neo4j" else 1)
    raise ValueError(kind)


VECTOR_BACKENDS = [
    "qdrant_edge",
    "qdrant_edge_hnsw",
    "qdrant_local",
    "qdrant_local_path",
    "neo4j",
    "neo4j_hnsw",
]


@pytest.fixture(params=VECTOR_BACKENDS)
async def vectors(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[VectorIndex]:
    index = make_vector_index(request.param, tmp_path, request)
    await index.open()
    yield index
    await index.close()
