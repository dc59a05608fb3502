"""``/api/v1/consolidate`` end to end, and the in-process scheduler."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any
from uuid import uuid4

import pytest
from fastapi.testclient import TestClient

from tests.api.helpers import assert_envelope, new_session_id, running_client, scratch_dir
from tests.conftest import ManualClock
from tests.engine.topics import TOPICS
from tests.factories import T0
from ww.config import ConfigError, load_settings
from ww.embedding import OnnxEmbedder

URL = "/api/v1/consolidate"
_CLOCK = ManualClock()


@pytest.fixture(scope="module")
def shared_client(onnx_embedder: OnnxEmbedder) -> Iterator[TestClient]:
    with scratch_dir() as tmp, running_client(tmp / "data", onnx_embedder, _CLOCK) as c:
        yield c


@pytest.fixture
def client(shared_client: TestClient) -> Iterator[TestClient]:
    _CLOCK.now = T0
    shared_client.headers["X-Session-ID"] = new_session_id("sleep")
    yield shared_client
    del shared_client.headers["X-Session-ID"]


def seed(client: TestClient) -> dict[str, list[str]]:
    body = {"episodes": [{"content": t} for texts in TOPICS.values() for t in texts]}
    r = client.post("/api/v1/episodes/batch", json=body)
    assert r.status_code == 201, r.text
    ids = [e["id"] for e in r.json()["episodes"]]
    return {topic: ids[i * 6 : (i + 1) * 6] for i, topic in enumerate(TOPICS)}


def consolidate(client: TestClient, **options: Any) -> dict[str, Any]:
    options.setdefault("min_cluster_size", 3)
    r = client.post(URL, json=options)
    assert r.status_code == 200, r.text
    return dict(r.json())


def test_consolidate_reports_entities_linked_to_their_episodes(client: TestClient) -> None:
    topics = seed(client)
    report = consolidate(client)
    assert report["clusters"] == 3 and report["entities_created"] == 3 and report["changed"]
    assert report["dry_run"] is False and report["archived"] == []
    assert {frozenset(e["members"]) for e in report["entities"]} == {
        frozenset(v) for v in topics.values()
    }
    listed = client.get("/api/v1/entities").json()["items"]
    assert {e["id"] for e in listed} == {e["entity_id"] for e in report["entities"]}
    for made in report["entities"]:
        for member in made["members"]:
            links = client.get(f"{URL}/links/{member}").json()["links"]
            assert [(k["target_id"], k["link_type"]) for k in links] == [
                (made["entity_id"], "CONSOLIDATED_INTO")
            ]
        links = client.get(f"{URL}/links/{made['entity_id']}").json()["links"]
        assert {k["source_id"] for k in links} == set(made["members"])
    again = consolidate(client)
    assert again["changed"] is False and again["entities_unchanged"] == 3
    # The unified recall sees the new entities beside the episodes.
    r = client.post("/api/v1/recall", json={"query": "sourdough bread", "learn": False})
    assert r.json()["counts"]["entity"] == 3


def test_dry_run_then_restore_an_archived_duplicate(client: TestClient) -> None:
    seed(client)
    _CLOCK.advance(minutes=1)  # the later copy is the duplicate
    r = client.post("/api/v1/episodes", json={"content": TOPICS["astronomy"][2]})
    dup = r.json()["id"]
    dry = consolidate(client, dry_run=True)
    assert dry["dry_run"] and len(dry["duplicates_merged"]) == 1
    assert client.get("/api/v1/entities").json()["items"] == []
    assert client.get(f"/api/v1/episodes/{dup}").json()["archived"] is False
    real = consolidate(client)
    assert [m["duplicate_id"] for m in real["duplicates_merged"]] == [dup]
    assert client.get(f"/api/v1/episodes/{dup}").json()["archived"] is True
    r = client.patch(f"/api/v1/episodes/{dup}", json={"archived": False})
    assert r.status_code == 200 and r.json()["archived"] is False


def test_links_are_isolated_between_sessions(client: TestClient) -> None:
    topics = seed(client)
    consolidate(client)
    member = topics["baking"][0]
    other = client.get(f"{URL}/links/{member}", headers={"X-Session-ID": new_session_id()})
    assert_envelope(other, 404, "not_found")
    report = client.post(URL, json={}, headers={"X-Session-ID": new_session_id()}).json()
    assert report["episodes_considered"] == 0 and report["changed"] is False


def test_empty_body_uses_defaults(client: TestClient) -> None:
    seed(client)
    r = client.post(URL)
    assert r.status_code == 200, r.text
    assert r.json()["episodes_considered"] == 18


@pytest.mark.parametrize(
    "body",
    [
        {"min_cluster_size": 1},
        {"duplicate_threshold": 1.5},
        {"decay_tau_days": 0},
        {"dry_run": "perhaps"},
        {"surprise": True},
        [],
    ],
)
def test_bad_options_are_422(client: TestClient, body: Any) -> None:
    assert_envelope(client.post(URL, json=body), 422)


def test_bad_link_id_is_422(client: TestClient) -> None:
    assert_envelope(client.get(f"{URL}/links/not-a-uuid"), 422)


def test_links_of_an_unknown_id_are_404(client: TestClient) -> None:
    err = assert_envelope(client.get(f"{URL}/links/{uuid4()}"), 404, "not_found")
    assert "memory" in err["message"]


def test_a_memory_without_links_has_an_empty_list(client: TestClient) -> None:
    ep = client.post("/api/v1/episodes", json={"content": "alone"}).json()["id"]
    entity = client.post("/api/v1/entities", json={"name": "Ada"}).json()["id"]
    skill = client.post("/api/v1/skills", json={"name": "s", "task": "t", "script": "x"})
    assert skill.status_code == 201, skill.text
    for memory_id in (ep, entity, skill.json()["id"]):
        r = client.get(f"{URL}/links/{memory_id}")
        assert r.status_code == 200, r.text
        assert r.json() == {"memory_id": memory_id, "links": []}


def test_interval_setting() -> None:
    assert load_settings(consolidation_interval=0).consolidation_interval == 0
    assert load_settings(consolidation_interval="3600").consolidation_interval == 3600
    with pytest.raises(ConfigError, match="WW_CONSOLIDATION_INTERVAL"):
        load_settings(consolidation_interval=-1)


def test_scheduler_consolidates_every_session(onnx_embedder: OnnxEmbedder) -> None:
    with (
        scratch_dir() as tmp,
        running_client(
            tmp / "data", onnx_embedder, ManualClock(), consolidation_interval=0.2
        ) as client,
    ):
        client.headers["X-Session-ID"] = "sched"
        seed(client)
        deadline = time.monotonic() + 30
        # The default min_cluster_size is 5 and each topic has 6 episodes.
        while time.monotonic() < deadline:
            if len(client.get("/api/v1/entities").json()["items"]) == 3:
                break
            time.sleep(0.1)
        assert len(client.get("/api/v1/entities").json()["items"]) == 3
