"""What the server tier writes to its logs while it works normally on Neo4j.

A fresh database has none of the property keys that only learning writes (a memory's
value, Hebbian weights, the encoder's version), so Neo4j answers each recall's reads of
them with "property key does not exist" notifications, which the driver logs as warnings:
several lines per recall until the first feedback, each naming a query. The store's driver
turns that one classification off; the others (a missing index behind a hint, a deprecated
form) still reach the log.
"""

from __future__ import annotations

import logging

import pytest

from tests.api.helpers import new_session_id, running_client, scratch_dir
from tests.conftest import ManualClock
from tests.neo4j_launcher import Neo4jProcess
from ww.embedding import OnnxEmbedder

pytestmark = pytest.mark.slow


def test_writes_and_recall_on_a_fresh_database_log_no_driver_warnings(
    own_neo4j: Neo4jProcess, onnx_embedder: OnnxEmbedder, caplog: pytest.LogCaptureFixture
) -> None:
    # A database of its own: property keys, once any node had them, stay known to Neo4j
    # after the nodes are gone, so the run's shared database would hide the notifications.
    headers = {"X-Session-ID": new_session_id("logs")}
    with (
        scratch_dir("ww-logs-") as tmp,
        running_client(
            tmp / "data",
            onnx_embedder,
            ManualClock(),
            neo4j_uri=own_neo4j.uri,
            vector_backend="neo4j",
        ) as c,
        caplog.at_level(logging.WARNING),
    ):
        for text in ("the boiler was serviced in March", "the roof leaks near the chimney"):
            r = c.post("/api/v1/episodes", json={"content": text}, headers=headers)
            assert r.status_code == 201, r.text
        r = c.post("/api/v1/episodes/recall", json={"query": "boiler service"}, headers=headers)
        assert r.status_code == 200, r.text
        assert r.json()["hits"]
    notices = [x.getMessage() for x in caplog.records if x.name == "neo4j.notifications"]
    assert notices == []
