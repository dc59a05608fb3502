"""The API on the Neo4j record store when Neo4j goes away and comes back.

This module starts its own Neo4j (the run's shared one must stay up for the other tests),
kills it with SIGKILL as a crash would, and starts it again on the same store.
"""

from __future__ import annotations

import pytest
from neo4j import GraphDatabase

from tests.api.helpers import assert_envelope, new_session_id, running_client, scratch_dir
from tests.conftest import ManualClock
from tests.neo4j_launcher import Neo4jProcess
from ww.embedding import OnnxEmbedder

EPISODES = "/api/v1/episodes"

pytestmark = pytest.mark.slow


def _stored_contents(uri: str, session: str) -> list[str]:
    """What Neo4j itself holds for the session, read around the app."""
    with GraphDatabase.driver(uri, auth=None) as driver:
        records, _, _ = driver.execute_query(
            "MATCH (e:WwEpisode {session_id: $sid}) RETURN e.content AS c ORDER BY c",
            {"sid": session},
        )
    return [str(r["c"]) for r in records]


@pytest.mark.parametrize("vector_backend", ["edge", "neo4j"])
def test_neo4j_down_is_503_without_partial_writes_and_recovers_without_restart(
    own_neo4j: Neo4jProcess, onnx_embedder: OnnxEmbedder, vector_backend: str
) -> None:
    session = new_session_id("fault")
    headers = {"X-Session-ID": session}
    with (
        scratch_dir("ww-fault-") as tmp,
        running_client(
            tmp / "data",
            onnx_embedder,
            ManualClock(),
            neo4j_uri=own_neo4j.uri,
            vector_backend=vector_backend,
            # The circuit breaker stays closed here, so every request meets Neo4j's own
            # failure (test_circuits_neo4j.py has the breaker open).
            circuit_failure_threshold=1000,
        ) as c,
    ):
        r = c.post(EPISODES, json={"content": "before the outage"}, headers=headers)
        assert r.status_code == 201, r.text
        first = r.json()["id"]
        # The record is in Neo4j, not in a local file.
        assert _stored_contents(own_neo4j.uri, session) == ["before the outage"]
        assert not (tmp / "data" / "ww.sqlite3").exists()
        assert (tmp / "data" / "vectors").exists() == (vector_backend == "edge")

        own_neo4j.kill()

        batch = {"episodes": [{"content": "lost one"}, {"content": "lost two"}]}
        for method, path, body in [
            ("POST", EPISODES, {"content": "during the outage"}),
            ("POST", f"{EPISODES}/batch", batch),
            ("GET", f"{EPISODES}/{first}", None),
            ("GET", EPISODES, None),
            ("GET", f"/api/v1/sessions/{session}", None),
        ]:
            r = c.request(method, path, json=body, headers=headers)
            error = assert_envelope(r, 503, "service_unavailable")
            assert "neo4j" in error["message"], error
        health = c.get("/api/v1/health")
        assert health.status_code == 503
        components = health.json()["components"]
        assert components["records"].startswith("error: neo4j")
        if vector_backend == "neo4j":  # the vectors are in the same database
            assert components["vectors"].startswith("error: neo4j")

        own_neo4j.start()  # same store and port; the app is not restarted

        assert c.get("/api/v1/health").status_code == 200
        r = c.get(f"{EPISODES}/{first}", headers=headers)
        assert r.status_code == 200, r.text
        r = c.post(EPISODES, json={"content": "after the outage"}, headers=headers)
        assert r.status_code == 201, r.text
        listed = c.get(EPISODES, headers=headers).json()
        assert sorted(ep["content"] for ep in listed["items"]) == [
            "after the outage",
            "before the outage",
        ]
        # Nothing of the failed requests reached Neo4j, not even half a batch.
        assert _stored_contents(own_neo4j.uri, session) == [
            "after the outage",
            "before the outage",
        ]
        stats = c.get(f"/api/v1/sessions/{session}", headers=headers).json()
        assert (stats["episodes"], stats["pending"]) == (2, 0)
        # Keyword recall works again on the session's full-text index, and semantic recall
        # on the vectors.
        r = c.post(f"{EPISODES}/recall", json={"query": "outage"}, headers=headers)
        assert r.status_code == 200, r.text
        keyword = {h["id"]: h["score_parts"]["keyword"] for h in r.json()["hits"]}
        assert keyword[first] > 0, keyword
        semantic = {h["id"]: h["score_parts"]["semantic"] for h in r.json()["hits"]}
        assert semantic[first] > 0, semantic
