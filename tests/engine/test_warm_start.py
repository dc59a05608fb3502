"""After a restart the server loads each stored session's keyword index in the background,
so the first recall of a large session does not wait for it (docs/operations.md).

Here, not in tests/api: only the embedded record store keeps keyword indexes in memory
(Neo4j keeps its full-text indexes itself), so the server tier's run has nothing to check."""

from __future__ import annotations

import time
from pathlib import Path

from tests.api.helpers import running_client
from tests.conftest import ManualClock
from ww.embedding import OnnxEmbedder
from ww.storage.guarded import unwrap
from ww.storage.sqlite.records import SQLiteRecordStore

WAIT_S = 30.0


def test_a_restarted_server_loads_keyword_indexes_before_the_first_recall(
    data_dir: Path, onnx_embedder: OnnxEmbedder, clock: ManualClock
) -> None:
    sessions = ("warm-a", "warm-b")
    with running_client(data_dir, onnx_embedder, clock) as client:
        for s in sessions:
            body = {
                "episodes": [
                    {"content": f"{s}: the harbour crane was repaired on {d}"}
                    for d in ("monday", "tuesday", "friday")
                ]
            }
            r = client.post("/api/v1/episodes/batch", json=body, headers={"X-Session-ID": s})
            assert r.status_code == 201, r.text

    with running_client(data_dir, onnx_embedder, clock) as client:
        store = unwrap(client.app.state.engine.records)  # type: ignore[attr-defined]
        assert isinstance(store, SQLiteRecordStore)
        deadline = time.monotonic() + WAIT_S
        # No request has touched either session: only the start-up task can load them.
        while not all(s in store.keywords for s in sessions):
            assert time.monotonic() < deadline, "keyword indexes were not loaded after start-up"
            time.sleep(0.05)
        r = client.post(
            "/api/v1/episodes/recall",
            json={"query": "harbour crane", "learn": False},
            headers={"X-Session-ID": "warm-a"},
        )
        assert r.status_code == 200, r.text
        assert len(r.json()["hits"]) == 3
        assert all(h["score_parts"]["keyword"] > 0 for h in r.json()["hits"])
