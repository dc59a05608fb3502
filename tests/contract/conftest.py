"""Every backend of a port runs the same contract suite: add a backend to the params."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from ww.storage import QdrantEdgeIndex, RecordStore, SQLiteRecordStore, VectorIndex
from ww.storage.qdrant_server import QdrantServerIndex

DIM = 8


@pytest.fixture(params=["sqlite", "sqlite_memory"])
async def records(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[RecordStore]:
    store: RecordStore
    if request.param == "sqlite":
        store = SQLiteRecordStore(tmp_path / "ww.sqlite3")
    elif request.param == "sqlite_memory":  # one connection: reads share the writer's thread
        store = SQLiteRecordStore(":memory:")
    await store.open()
    yield store
    await store.close()


def make_vector_index(kind: str, tmp_path: Path) -> VectorIndex:
    """A fresh, unopened index of ``kind``.

    ``qdrant_local`` is the Qdrant server backend with qdrant-client in local mode: the same
    client calls as against a server, answered by the client's in-process engine.
    """
    if kind == "qdrant_edge":
        return QdrantEdgeIndex(tmp_path / "vectors", DIM)
    if kind == "qdrant_local":
        return QdrantServerIndex(DIM, location=":memory:")
    if kind == "qdrant_local_path":
        return QdrantServerIndex(DIM, path=tmp_path / "qdrant-local")
    raise ValueError(kind)


VECTOR_BACKENDS = ["qdrant_edge", "qdrant_local", "qdrant_local_path"]


@pytest.fixture(params=VECTOR_BACKENDS)
async def vectors(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[VectorIndex]:
    index = make_vector_index(request.param, tmp_path)
    await index.open()
    yield index
    await index.close()
