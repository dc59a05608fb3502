"""Builders shared by the API test modules (not a test module itself).

Starting the app costs most of a second on a disk (the Qdrant Edge shard is created and
flushed), so data directories go to RAM where possible (``scratch_dir``), and the modules
that make many requests share one app per module and give each test its own
``X-Session-ID``: sessions are the unit of isolation, and a fresh session is empty.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any
from uuid import uuid4

from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import ManualClock
from tests.neo4j_launcher import reset_record_store
from ww.api import create_app
from ww.config import Settings
from ww.embedding import Embedder, EmbeddingService
from ww.engine import build_engine
from ww.storage.qdrant.server import QdrantServerIndex

ENVELOPE_KEYS = {"code", "message", "request_id"}

# A scrape of /metrics: (series name, its labels) -> value.
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]

# Data directories an app of this run has used. A second app on one of them is a restart of
# the service: on the server tier its records must still be in Neo4j, so only the first app
# on a directory gets an emptied record store.
_STARTED_DIRS: set[Path] = set()


@contextlib.contextmanager
def running_client(
    data_dir: Path,
    embedder: Embedder,
    clock: ManualClock,
    *,
    raise_server_exceptions: bool = False,
    vectors: str = "qdrant_edge",
    **settings: Any,
) -> Iterator[TestClient]:
    """A TestClient over a fresh app whose lifespan (engine open/close) runs around it.

    Server errors come back as responses (a 500 envelope) rather than exceptions, so a test
    that hits one fails on its status with the body in the message. ``vectors`` names the
    vector backend: ``qdrant_edge`` (the configured embedded tier) or ``qdrant_local``.
    """
    cfg = Settings(_env_file=None, data_dir=data_dir, environment="test", **settings)  # type: ignore[arg-type]
    if data_dir.resolve() not in _STARTED_DIRS:
        _STARTED_DIRS.add(data_dir.resolve())
        reset_record_store(cfg)
    service = EmbeddingService(embedder, cache_size=4096, batch_size=32)
    if vectors == "qdrant_edge":
        engine = build_engine(cfg, clock=clock, embedder=service)
    elif vectors == "qdrant_local":
        # The Qdrant server backend with qdrant-client in local mode: the same client calls
        # the server tier makes, with SQLite records (the SQLite + Qdrant server mix).
        engine = build_engine(cfg, clock=clock, embedder=service)
        engine.vectors = QdrantServerIndex(embedder.dimension, location=":memory:")
    else:
        raise ValueError(vectors)
    app = create_app(cfg, engine)
    with TestClient(app, raise_server_exceptions=raise_server_exceptions) as client:
        yield client


def _scratch_root() -> str | None:
    shm = Path("/dev/shm")
    return str(shm) if shm.is_dir() and os.access(shm, os.W_OK) else None


@contextlib.contextmanager
def scratch_dir(prefix: str = "ww-api-") -> Iterator[Path]:
    """A throwaway directory, in RAM where the system offers it.

    Creating and flushing the Qdrant Edge shard is fsync-bound (about a second on a disk,
    milliseconds on tmpfs); these tests exercise the API, not durability, so they use RAM.
    """
    with tempfile.TemporaryDirectory(prefix=prefix, dir=_scratch_root()) as name:
        yield Path(name)


def new_session_id(prefix: str = "t") -> str:
    return f"{prefix}-{uuid4().hex[:12]}"


def parse_ts(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def assert_envelope(r: Any, status: int, code: str | None = None) -> dict[str, Any]:
    """The response is ``status`` with exactly the error envelope, tied to the request id."""
    assert r.status_code == status, r.text
    body = r.json()
    assert set(body) == {"error"}, body
    assert set(body["error"]) == ENVELOPE_KEYS, body
    assert isinstance(body["error"]["message"], str)
    assert body["error"]["message"]
    if code is not None:
        assert body["error"]["code"] == code, body
    assert body["error"]["request_id"] == r.headers["x-request-id"]
    return dict(body["error"])


def scrape_metrics(client: TestClient, **headers: str) -> Samples:
    """Every sample /metrics answers now."""
    r = client.get("/metrics", headers=headers)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain")
    out: Samples = {}
    for family in text_string_to_metric_families(r.text):
        for s in family.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


def sample_value(samples: Samples, name: str, **labels: str) -> float:
    """The value of one series in a scrape, 0 if it has none."""
    return samples.get((name, frozenset(labels.items())), 0.0)
