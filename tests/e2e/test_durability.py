"""Crash safety of the embedded tier, checked on the real server process.

A server is SIGKILLed while a batch ingest is in flight; after a restart on the same data
directory every acknowledged episode must be readable and recallable, nothing may be left
pending and no vector may point at a missing record.
"""

from __future__ import annotations

import asyncio
import random
import statistics
import subprocess
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import httpx
import numpy as np
import pytest

from tests.e2e.conftest import DIMENSION, Server, free_port, inspect_stores, server_cmd, server_env
from ww.engine.dynamics import Fsrs
from ww.models import Episode
from ww.storage import QdrantEdgeIndex, SQLiteRecordStore, VectorItem
from ww.storage.payload import episode_payload

pytestmark = pytest.mark.slow

SESSION = "e2e-durability"
HEADERS = {"X-Session-ID": SESSION}
BATCH_SIZE = 50
MAX_BATCHES = 40
ACKS_BEFORE_KILL = 3
_VOCABULARY = (
    "harbor lantern glacier violin orchard canyon ember falcon meadow quartz tundra saffron "
    "compass velvet thunder marble willow cobalt prairie anchor beacon cipher dune fjord "
    "granite hollow ivory jasmine kelp lagoon mosaic nebula obsidian pepper quiver raven"
)


def _content(rng: random.Random, batch: int, item: int) -> str:
    token = f"zq{uuid4().hex[:12]}"
    words = " ".join(rng.sample(_VOCABULARY.split(), 6))
    return f"probe {token} batch {batch} item {item}: {words}"


@dataclass
class Ingest:
    """What the client thread saw: acknowledged episodes and how the stream ended."""

    url: str
    acked: dict[UUID, tuple[str, str]] = field(default_factory=dict)  # id -> (ext id, content)
    batches: int = 0
    latencies: list[float] = field(default_factory=list)
    ended_by: str = "not started"
    enough: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        rng = random.Random(7)
        try:
            with httpx.Client(base_url=self.url, headers=HEADERS, timeout=60.0) as client:
                for b in range(MAX_BATCHES):
                    items = [
                        {"content": _content(rng, b, i), "external_id": f"ext-{b}-{i}"}
                        for i in range(BATCH_SIZE)
                    ]
                    t0 = time.monotonic()
                    r = client.post("/api/v1/episodes/batch", json={"episodes": items})
                    if r.status_code != 201:
                        self.ended_by = f"HTTP {r.status_code}: {r.text[:200]}"
                        return
                    self.latencies.append(time.monotonic() - t0)
                    sent = {it["external_id"]: it["content"] for it in items}
                    for ep in r.json()["episodes"]:
                        assert ep["content"] == sent[ep["external_id"]]
                        self.acked[UUID(ep["id"])] = (ep["external_id"], ep["content"])
                    self.batches += 1
                    if self.batches >= ACKS_BEFORE_KILL:
                        self.enough.set()
                self.ended_by = "ran out of batches"
        except httpx.TransportError as exc:
            self.ended_by = f"transport error: {type(exc).__name__}"
        finally:
            self.enough.set()


def test_sigkill_during_batch_ingest_loses_no_acknowledged_episode(
    tmp_path: Path, start_server: Any
) -> None:
    data_dir = tmp_path / "data"
    first: Server = start_server(data_dir)

    ingest = Ingest(first.url)
    client = threading.Thread(target=ingest.run, name="e2e-ingest", daemon=True)
    client.start()
    assert ingest.enough.wait(timeout=180), "no batch acknowledged in time"
    assert ingest.batches >= ACKS_BEFORE_KILL, ingest.ended_by
    # Land the kill inside the next batch (the client posts back to back), at a random
    # point of it: while embedding, between the record commit and the vector upsert, ...
    fraction = random.uniform(0.1, 1.0)
    time.sleep(fraction * statistics.median(ingest.latencies))
    first.kill()
    client.join(timeout=90)
    assert not client.is_alive(), "client thread still running after the kill"
    assert ingest.ended_by.startswith("transport error"), (fraction, ingest.ended_by)
    acked = dict(ingest.acked)
    assert len(acked) == ingest.batches * BATCH_SIZE

    second: Server = start_server(data_dir)
    with httpx.Client(base_url=second.url, headers=HEADERS, timeout=30.0) as api:
        for ep_id, (external_id, content) in acked.items():
            r = api.get(f"/api/v1/episodes/{ep_id}")
            assert r.status_code == 200, (ep_id, r.text)
            body = r.json()
            assert (body["external_id"], body["content"]) == (external_id, content)
            assert body["index_state"] == "indexed"

            r = api.post(
                "/api/v1/episodes/recall", json={"query": content, "limit": 5, "learn": False}
            )
            assert r.status_code == 200, r.text
            hits = {UUID(h["id"]): h for h in r.json()["hits"]}
            assert ep_id in hits, f"{external_id} not recalled by its own content"
            # Its own text embeds to (almost) the same vector: proof the vector survived.
            assert hits[ep_id]["score_parts"]["semantic"] > 0.95, hits[ep_id]["score_parts"]

        stats = api.get(f"/api/v1/sessions/{SESSION}")
        assert stats.status_code == 200, stats.text
        assert stats.json()["pending"] == 0
        assert stats.json()["episodes"] >= len(acked)

    second.stop()
    view = inspect_stores(data_dir, SESSION)
    assert set(acked) <= view.record_ids
    assert view.pending == 0
    assert not view.orphans, f"{len(view.orphans)} vectors without a record"
    # Every committed record (acknowledged or caught by the kill) has its vector.
    assert view.vector_ids == view.record_ids


def _seed_pending_and_orphan(data_dir: Path, session_id: str) -> tuple[Episode, UUID]:
    """Leave what a crash between the two stores leaves: a pending record, a stray vector."""
    now = datetime.now(UTC)
    pending = Episode(
        id=uuid4(),
        session_id=session_id,
        content="reconciler probe zqpending7781: the lighthouse keeper logs a violet squall",
        timestamp=now,
        ingested_at=now,
        external_id="pending-1",
        fsrs=Fsrs().new_state(now),
    )
    orphan = pending.model_copy(update={"id": uuid4(), "content": "never stored"})
    vector = np.random.default_rng(3).standard_normal(DIMENSION).astype(np.float32)
    vector /= np.linalg.norm(vector)

    async def seed() -> None:
        records = SQLiteRecordStore(data_dir / "ww.sqlite3")
        vectors = QdrantEdgeIndex(data_dir / "vectors", DIMENSION)
        await records.open()
        await vectors.open()
        try:
            await records.ensure_session(session_id, now)
            await records.insert_episodes(session_id, [pending])
            await vectors.upsert(
                session_id, [VectorItem(orphan.id, vector, episode_payload(orphan))]
            )
        finally:
            await vectors.close()
            await records.close()

    asyncio.run(seed())
    return pending, orphan.id


def test_startup_reconciler_indexes_pending_and_drops_orphans(
    tmp_path: Path, start_server: Any
) -> None:
    data_dir = tmp_path / "data"
    session = "e2e-reconcile"
    pending, orphan_id = _seed_pending_and_orphan(data_dir, session)
    before = inspect_stores(data_dir, session)
    assert (before.pending, before.orphans) == (1, {orphan_id})

    server: Server = start_server(data_dir)
    with httpx.Client(base_url=server.url, headers={"X-Session-ID": session}) as api:
        r = api.get(f"/api/v1/episodes/{pending.id}")
        assert r.status_code == 200, r.text
        assert r.json()["index_state"] == "indexed"
        r = api.post(
            "/api/v1/episodes/recall",
            json={"query": pending.content, "limit": 5, "learn": False, "preset": "semantic"},
        )
        assert r.status_code == 200, r.text
        hits = r.json()["hits"]
        assert [h["id"] for h in hits] == [str(pending.id)]
        assert hits[0]["score_parts"]["semantic"] > 0.95
        assert api.get(f"/api/v1/sessions/{session}").json()["pending"] == 0

    server.stop()
    after = inspect_stores(data_dir, session)
    assert after.pending == 0
    assert after.vector_ids == after.record_ids == {pending.id}
    assert orphan_id not in after.vector_ids


def _start_expecting_failure(data_dir: Path, **extra_env: str) -> subprocess.CompletedProcess[str]:
    env = server_env(data_dir, free_port(), **extra_env)
    return subprocess.run(
        server_cmd(),
        env=env,
        cwd=data_dir.parent,
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("WW_API_WORKERS", "4"),
        ("WW_API_PORT", "70000"),
        ("WW_FSRS_RETENTION_TARGET", "2"),
    ],
)
def test_invalid_configuration_stops_startup_naming_the_variable(
    tmp_path: Path, variable: str, value: str
) -> None:
    done = _start_expecting_failure(tmp_path / "data", **{variable: value})
    assert done.returncode == 2, done.stderr[-2000:]
    assert f"{variable}=" in done.stderr, done.stderr[-2000:]
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "data").exists(), "a refused start-up must not create the data dir"


def test_reopening_with_another_embedding_dimension_or_model_is_refused(
    tmp_path: Path, start_server: Any
) -> None:
    data_dir = tmp_path / "data"
    server: Server = start_server(data_dir)
    with httpx.Client(base_url=server.url, headers=HEADERS) as api:
        r = api.post("/api/v1/episodes", json={"content": "written with the vendored model"})
        assert r.status_code == 201, r.text
    server.stop()

    done = _start_expecting_failure(data_dir, WW_EMBEDDING_DIMENSION="768")
    assert done.returncode == 2, done.stderr[-2000:]
    assert "WW_EMBEDDING_DIMENSION=768" in done.stderr, done.stderr[-2000:]
    assert "Traceback" not in done.stderr

    # The data directory remembers its model: a mismatch there is refused too.
    async def pretend_other_model() -> None:
        records = SQLiteRecordStore(data_dir / "ww.sqlite3")
        await records.open()
        try:
            await records.set_meta("embedding_model", "some-other-model")
        finally:
            await records.close()

    asyncio.run(pretend_other_model())
    done = _start_expecting_failure(data_dir)
    assert done.returncode == 2, done.stderr[-2000:]
    assert "WW_EMBEDDING_MODEL=some-other-model" in done.stderr, done.stderr[-2000:]
    assert "Traceback" not in done.stderr
