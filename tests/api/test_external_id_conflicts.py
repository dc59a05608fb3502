"""``on_conflict`` on episode creates: an ``external_id`` the session has is not stored twice."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from tests.api.helpers import assert_envelope, new_session_id, running_client, scratch_dir
from tests.conftest import ManualClock
from ww.embedding import OnnxEmbedder

EPISODES = "/api/v1/episodes"


@pytest.fixture(scope="module")
def shared_client(onnx_embedder: OnnxEmbedder) -> Iterator[TestClient]:
    with scratch_dir() as tmp, running_client(tmp / "data", onnx_embedder, ManualClock()) as c:
        yield c


@pytest.fixture
def session() -> str:
    return new_session_id("ext")


@pytest.fixture
def client(shared_client: TestClient, session: str) -> Iterator[TestClient]:
    shared_client.headers["X-Session-ID"] = session
    yield shared_client
    del shared_client.headers["X-Session-ID"]


def stored(client: TestClient, session: str) -> int:
    r = client.get(f"/api/v1/sessions/{session}")
    return 0 if r.status_code == 404 else int(r.json()["episodes"])


def test_without_on_conflict_duplicates_are_stored_as_before(
    client: TestClient, session: str
) -> None:
    body = {"content": "ticket opened", "external_id": "t-1"}
    assert client.post(EPISODES, json=body).status_code == 201
    assert client.post(EPISODES, json=body).status_code == 201
    assert stored(client, session) == 2


def test_error_refuses_a_known_external_id_and_names_its_episode(
    client: TestClient, session: str
) -> None:
    first = client.post(EPISODES, json={"content": "a", "external_id": "t-1"}).json()
    r = client.post(EPISODES, json={"content": "b", "external_id": "t-1", "on_conflict": "error"})
    body = assert_envelope(r, 409, "external_id_conflict")
    assert first["id"] in body["message"]
    assert stored(client, session) == 1
    fresh = {"content": "c", "external_id": "t-2", "on_conflict": "error"}
    assert client.post(EPISODES, json=fresh).status_code == 201


def test_return_existing_answers_the_stored_episode(client: TestClient, session: str) -> None:
    body = {"content": "a", "external_id": "t-1", "on_conflict": "return_existing"}
    first = client.post(EPISODES, json=body)
    assert first.status_code == 201
    again = client.post(EPISODES, json={**body, "content": "changed text"})
    assert again.status_code == 200
    assert again.json() == client.get(f"{EPISODES}/{first.json()['id']}").json()
    assert stored(client, session) == 1


def test_on_conflict_without_an_external_id_is_a_plain_create(
    client: TestClient, session: str
) -> None:
    for _ in range(2):
        r = client.post(EPISODES, json={"content": "a", "on_conflict": "error"})
        assert r.status_code == 201
    assert stored(client, session) == 2


def test_batch_return_existing(client: TestClient, session: str) -> None:
    known = client.post(EPISODES, json={"content": "a", "external_id": "a"}).json()
    items = [
        {"content": "a again", "external_id": "a"},
        {"content": "b", "external_id": "b"},
        {"content": "b twice", "external_id": "b"},
        {"content": "no id"},
    ]
    r = client.post(f"{EPISODES}/batch", json={"episodes": items, "on_conflict": "return_existing"})
    assert r.status_code == 201, r.text
    out = r.json()
    ids = [e["id"] for e in out["episodes"]]
    assert (out["count"], out["existing"]) == (4, 2)
    assert ids[0] == known["id"] and ids[2] == ids[1] and len(set(ids)) == 3
    assert out["episodes"][1]["content"] == "b"
    assert stored(client, session) == 3


@pytest.mark.parametrize("repeat_inside", [False, True])
def test_batch_error_stores_nothing_on_any_conflict(
    client: TestClient, session: str, repeat_inside: bool
) -> None:
    if repeat_inside:
        items = [{"content": "x", "external_id": "x"}, {"content": "y", "external_id": "x"}]
    else:
        client.post(EPISODES, json={"content": "a", "external_id": "a"})
        items = [{"content": "b", "external_id": "b"}, {"content": "a", "external_id": "a"}]
    r = client.post(f"{EPISODES}/batch", json={"episodes": items, "on_conflict": "error"})
    assert_envelope(r, 409, "external_id_conflict")
    assert stored(client, session) == (0 if repeat_inside else 1)


def test_on_conflict_belongs_to_the_batch_not_its_items(client: TestClient) -> None:
    items = [{"content": "a", "external_id": "a", "on_conflict": "error"}]
    assert_envelope(client.post(f"{EPISODES}/batch", json={"episodes": items}), 422)


def test_concurrent_creates_of_one_external_id_store_one(client: TestClient, session: str) -> None:
    body = {
        "content": "sent by six clients",
        "external_id": "race",
        "on_conflict": "return_existing",
    }

    async def burst() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=client.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://ww") as http:
            sends = (
                http.post(EPISODES, json=body, headers={"X-Session-ID": session}) for _ in range(6)
            )
            return list(await asyncio.gather(*sends))

    portal: Any = getattr(client, "portal")  # noqa: B009 -- set while the client runs
    answers = portal.call(burst)
    assert sorted(r.status_code for r in answers) == [200] * 5 + [201]
    assert len({r.json()["id"] for r in answers}) == 1
    assert stored(client, session) == 1
