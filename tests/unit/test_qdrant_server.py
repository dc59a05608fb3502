"""QdrantServerIndex beyond the shared contract: collections, reopening, faults, the factory.

Faults are real: a loopback port nobody listens on, and a loopback HTTP server that answers
with the status a misconfigured or failing Qdrant would send.
"""

from __future__ import annotations

import http.server
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from tests.factories import make_episode, unit
from ww.config import Settings
from ww.models import EpisodeFilter
from ww.storage import QdrantEdgeIndex, StoreUnavailableError, VectorItem
from ww.storage.factory import build_stores, build_vector_index
from ww.storage.payload import episode_payload
from ww.storage.qdrant.server import _PAYLOAD_INDEXES, QdrantServerIndex
from ww.storage.vector_base import GRAPH_FIELDS, PAYLOAD_INDEXES

DIM = 8


def _item(session: str, seed: int) -> VectorItem:
    ep = make_episode(session)
    return VectorItem(ep.id, unit(DIM, seed), episode_payload(ep))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def answering(request: pytest.FixtureRequest) -> Iterator[str]:
    """A loopback HTTP server that answers every request with status ``request.param``."""
    status: int = request.param

    class Handler(http.server.BaseHTTPRequestHandler):
        def _answer(self) -> None:
            body = b'{"status": {"error": "injected"}}'
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = do_PUT = do_DELETE = _answer

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_needs_exactly_one_target(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="exactly one"):
        QdrantServerIndex(DIM)
    with pytest.raises(ValueError, match="exactly one"):
        QdrantServerIndex(DIM, location=":memory:", path=tmp_path)


async def test_unreachable_server_is_unavailable() -> None:
    index = QdrantServerIndex(DIM, url=f"http://127.0.0.1:{_free_port()}", timeout_s=2)
    with pytest.raises(StoreUnavailableError) as info:
        await index.open()
    assert info.value.component == "qdrant"
    await index.close()


@pytest.mark.parametrize("answering", [401, 403, 500, 503], indirect=True)
@pytest.mark.filterwarnings("ignore:Api key is used with an insecure connection")
async def test_refusing_or_failing_server_is_unavailable(answering: str) -> None:
    index = QdrantServerIndex(DIM, url=answering, api_key="wrong", timeout_s=2)
    with pytest.raises(StoreUnavailableError) as info:
        await index.open()
    assert info.value.component == "qdrant"
    assert answering in str(info.value)


async def test_closed_index_is_unavailable() -> None:
    index = QdrantServerIndex(DIM, location=":memory:")
    await index.open()
    await index.close()
    await index.close()  # idempotent
    with pytest.raises(StoreUnavailableError):
        await index.check()
    with pytest.raises(StoreUnavailableError):
        await index.search("s1", unit(DIM, 1), EpisodeFilter(), 5)


async def test_memory_types_get_their_own_collections(tmp_path: Path) -> None:
    episodes = QdrantServerIndex(DIM, path=tmp_path / "q")
    await episodes.open()
    a = _item("s1", 1)
    await episodes.upsert("s1", [a])
    await episodes.close()

    skills = QdrantServerIndex(DIM, path=tmp_path / "q", prefix="ww", memory_type="skills")
    assert (episodes.collection, skills.collection) == ("ww_episodes", "ww_skills")
    await skills.open()
    try:
        assert await skills.count("s1") == 0
    finally:
        await skills.close()


async def test_reopen_keeps_vectors_and_refuses_another_dimension(tmp_path: Path) -> None:
    index = QdrantServerIndex(DIM, path=tmp_path / "q")
    await index.open()
    a = _item("s1", 1)
    await index.upsert("s1", [a])
    await index.close()

    again = QdrantServerIndex(DIM, path=tmp_path / "q")
    await again.open()
    try:
        got = await again.get_vectors("s1", [a.id])
        np.testing.assert_allclose(got[a.id], a.vector, atol=1e-6)
    finally:
        await again.close()

    wider = QdrantServerIndex(DIM * 2, path=tmp_path / "q")
    with pytest.raises(RuntimeError, match=f"dimension {DIM}, not {DIM * 2}"):
        await wider.open()


async def test_optimize_is_left_to_the_server() -> None:
    index = QdrantServerIndex(DIM, location=":memory:")
    await index.open()
    try:
        await index.upsert("s1", [_item("s1", i) for i in range(5)])
        # The engine's maintenance loop optimises when unindexed() reaches its threshold;
        # a server indexes by itself, so there is never anything to schedule.
        assert await index.unindexed() == 0
        assert await index.optimize() is False
    finally:
        await index.close()


def test_factory_picks_the_backend(tmp_path: Path) -> None:
    embedded = Settings(data_dir=tmp_path, environment="test")  # type: ignore[arg-type]
    assert isinstance(build_vector_index(embedded), QdrantEdgeIndex)

    server = Settings(
        data_dir=tmp_path,
        environment="test",  # type: ignore[arg-type]
        qdrant_url="http://127.0.0.1:6333",
        qdrant_api_key="secret-key",  # type: ignore[arg-type]
        qdrant_hnsw_m=32,
        qdrant_hnsw_ef_construct=200,
        qdrant_on_disk=True,
    )
    _, vectors = build_stores(server)
    assert isinstance(vectors, QdrantServerIndex)
    assert vectors.collection == "ww_episodes"
    assert vectors.dimension == server.embedding_dimension


def test_payload_indexes_link_only_the_fields_every_search_filters_on() -> None:
    """The server gets the Edge shard's rule (``GRAPH_FIELDS``); local mode has no indexes.
    No Qdrant server runs on these machines: what the server does with them is Qdrant's."""
    params = dict(_PAYLOAD_INDEXES)
    assert set(params) == {field for field, _ in PAYLOAD_INDEXES}
    assert params["session_id"].is_tenant is True
    for field, integer in PAYLOAD_INDEXES:
        assert (params[field].enable_hnsw is not False) == (field in GRAPH_FIELDS), field
        assert (params[field].type.value == "integer") == integer, field
