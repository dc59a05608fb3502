"""Every backend of a port runs the same contract suite: add a backend to the params."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.neo4j_launcher import Neo4jProcess, wipe_database
from ww.storage import QdrantEdgeIndex, RecordStore, SQLiteRecordStore, VectorIndex

DIM = 8


@pytest.fixture(params=["sqlite", "sqlite_memory", "neo4j"])
async def records(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[RecordStore]:
    store: RecordStore
    if request.param == "sqlite":
        store = SQLiteRecordStore(tmp_path / "ww.sqlite3")
    elif request.param == "sqlite_memory":  # one connection: reads share the writer's thread
        store = SQLiteRecordStore(":memory:")
    elif request.param == "neo4j":  # one server for the run, emptied before each test
        from ww.storage.neo4j import Neo4jRecordStore

        server: Neo4jProcess = request.getfixturevalue("neo4j_server")
        wipe_database(server.uri)
        store = Neo4jRecordStore(server.uri)
    await store.open()
    yield store
    await store.close()


@pytest.fixture(params=["qdrant_edge"])
async def vectors(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[VectorIndex]:
    index: VectorIndex
    if request.param == "qdrant_edge":
        index = QdrantEdgeIndex(tmp_path / "vectors", DIM)
    await index.open()
    yield index
    await index.close()
