"""Session isolation, the sessions endpoints, the error envelope and the system endpoints."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.api.helpers import assert_envelope, new_session_id, running_client, scratch_dir
from tests.conftest import ManualClock
from ww.embedding import OnnxEmbedder

EPISODES = "/api/v1/episodes"
SESSIONS = "/api/v1/sessions"
MISSING_ID = "00000000-0000-4000-8000-000000000000"


@pytest.fixture(scope="module")
def client(onnx_embedder: OnnxEmbedder) -> Iterator[TestClient]:
    """One app for the module: tests name their own sessions, so they do not meet."""
    with scratch_dir() as tmp, running_client(tmp / "data", onnx_embedder, ManualClock()) as c:
        yield c


@pytest.fixture(scope="module")
def small_client(onnx_embedder: OnnxEmbedder) -> Iterator[TestClient]:
    """An app with a 2 KiB body limit and another default session."""
    with (
        scratch_dir() as tmp,
        running_client(
            tmp / "data",
            onnx_embedder,
            ManualClock(),
            api_max_body_bytes=2048,
            session_id="fallback-session",
        ) as c,
    ):
        yield c


def h(session: str, **extra: str) -> dict[str, str]:
    return {"X-Session-ID": session, **extra}


def create(client: TestClient, session: str, content: str, **body: Any) -> dict[str, Any]:
    r = client.post(EPISODES, json={"content": content, **body}, headers=h(session))
    assert r.status_code == 201, r.text
    return r.json()


def visible(client: TestClient, session: str, **params: Any) -> list[str]:
    r = client.get(EPISODES, params={"limit": 200, **params}, headers=h(session))
    assert r.status_code == 200, r.text
    return [item["id"] for item in r.json()["items"]]


def all_sessions(client: TestClient) -> list[dict[str, Any]]:
    """Every session, following the cursor from page to page."""
    out: list[dict[str, Any]] = []
    params: dict[str, Any] = {}
    while True:
        r = client.get(SESSIONS, params=params)
        assert r.status_code == 200, r.text
        out += r.json()["sessions"]
        if r.json()["next_cursor"] is None:
            return out
        params["cursor"] = r.json()["next_cursor"]


def recalled(client: TestClient, session: str, query: str, **body: Any) -> list[str]:
    r = client.post(f"{EPISODES}/recall", json={"query": query, **body}, headers=h(session))
    assert r.status_code == 200, r.text
    return [hit["id"] for hit in r.json()["hits"]]


# -- X-Session-ID isolation -------------------------------------------------------------------


def test_episode_of_one_session_is_invisible_to_another(client: TestClient) -> None:
    a, b = new_session_id("a"), new_session_id("b")
    secret = create(client, a, "the vault combination is 31-24-7", external_id="vault")
    mine = create(client, b, "the vault in the other office", external_id="vault")
    url = f"{EPISODES}/{secret['id']}"

    assert_envelope(client.get(url, headers=h(b)), 404, "not_found")
    assert_envelope(client.patch(url, json={"content": "stolen"}, headers=h(b)), 404)
    assert_envelope(client.post(f"{url}/mark-important", headers=h(b)), 404, "not_found")
    assert_envelope(client.delete(url, headers=h(b)), 404, "not_found")

    assert visible(client, b) == [mine["id"]]
    assert visible(client, b, include_archived="true") == [mine["id"]]
    for query in ("vault combination 31-24-7", "vault", "31"):
        for learn in (True, False):
            assert secret["id"] not in recalled(client, b, query, learn=learn)
    assert recalled(client, b, "vault combination", filters={"include_archived": True}) == [
        mine["id"]
    ]

    # Nothing B did touched A's episode: not the content, not the importance, not access.
    got = client.get(url, headers=h(a))
    assert got.status_code == 200
    assert got.json()["content"] == "the vault combination is 31-24-7"
    assert got.json()["importance"] == secret["importance"]
    assert got.json()["access_count"] == 0
    assert visible(client, a) == [secret["id"]]
    assert recalled(client, a, "vault combination", learn=False) == [secret["id"]]


def test_missing_header_uses_the_default_session(client: TestClient) -> None:
    ep = client.post(EPISODES, json={"content": "no header given"})
    assert ep.status_code == 201
    assert ep.json()["session_id"] == "default"
    eid = ep.json()["id"]
    assert client.get(f"{EPISODES}/{eid}").status_code == 200
    assert client.get(f"{EPISODES}/{eid}", headers=h("default")).status_code == 200
    assert_envelope(client.get(f"{EPISODES}/{eid}", headers=h(new_session_id())), 404)
    assert client.delete(f"{EPISODES}/{eid}").status_code == 204


def test_missing_header_uses_configured_ww_session_id(small_client: TestClient) -> None:
    r = small_client.post(EPISODES, json={"content": "configured default"})
    assert r.status_code == 201
    assert r.json()["session_id"] == "fallback-session"
    listed = small_client.get(EPISODES, headers=h("fallback-session")).json()["items"]
    assert [e["id"] for e in listed] == [r.json()["id"]]
    assert small_client.get(EPISODES, headers=h("default")).json()["items"] == []


@pytest.mark.parametrize(
    "bad",
    ["bad id!", "x" * 200, "x" * 129, "-lead", "_lead", ".lead", "a/b", "a b", "ünï"],
)
def test_invalid_session_id_is_400(client: TestClient, bad: str) -> None:
    headers = {"X-Session-ID": bad.encode()}  # bytes: the raw UTF-8 on the wire
    for method, url, body in (
        ("GET", EPISODES, None),
        ("POST", EPISODES, {"content": "x"}),
        ("POST", f"{EPISODES}/recall", {"query": "x"}),
        ("GET", f"{EPISODES}/{MISSING_ID}", None),
    ):
        r = client.request(method, url, json=body, headers=headers)
        err = assert_envelope(r, 400, "invalid_session_id")
        assert "X-Session-ID" in err["message"]


def test_longest_valid_session_id_is_accepted(client: TestClient) -> None:
    sid = "s" + "x" * 127
    r = client.post(EPISODES, json={"content": "long session"}, headers=h(sid))
    assert r.status_code == 201
    assert r.json()["session_id"] == sid
    assert client.get(f"{SESSIONS}/{sid}").status_code == 200


# -- /api/v1/sessions -------------------------------------------------------------------------


def test_sessions_list_and_stats(client: TestClient) -> None:
    a, b = new_session_id("la"), new_session_id("lb")
    for i in range(3):
        create(client, a, f"alpha note {i}")
    archived = create(client, b, "beta note")
    client.patch(f"{EPISODES}/{archived['id']}", json={"archived": True}, headers=h(b))

    by_id = {s["session_id"]: s for s in all_sessions(client)}
    assert by_id[a]["episodes"] == 3
    assert by_id[a]["archived"] == 0
    assert by_id[a]["pending"] == 0
    assert by_id[a]["content_chars"] == sum(len(f"alpha note {i}") for i in range(3))
    assert by_id[b]["episodes"] == 1
    assert by_id[b]["archived"] == 1

    stats = client.get(f"{SESSIONS}/{a}")
    assert stats.status_code == 200
    assert stats.json() == by_id[a]
    assert set(stats.json()) == {
        "session_id",
        "created_at",
        "episodes",
        "archived",
        "pending",
        "entities",
        "skills",
        "content_chars",
        "last_activity",
    }
    assert_envelope(client.get(f"{SESSIONS}/{new_session_id('never')}"), 404, "not_found")
    assert_envelope(client.get(f"{SESSIONS}/bad%20id!"), 422, "validation_error")


def test_delete_session_removes_its_episodes(client: TestClient) -> None:
    a, b = new_session_id("da"), new_session_id("db")
    gone = [create(client, a, f"incident report {i} about the outage") for i in range(3)]
    kept = create(client, b, "incident report about the outage")

    r = client.delete(f"{SESSIONS}/{a}")
    assert r.status_code == 200, r.text
    assert r.json() == {
        "session_id": a,
        "deleted_episodes": 3,
        "deleted_entities": 0,
        "deleted_skills": 0,
    }

    assert visible(client, a) == []
    assert visible(client, a, include_archived="true") == []
    assert recalled(client, a, "incident report outage") == []
    for ep in gone:
        assert_envelope(client.get(f"{EPISODES}/{ep['id']}", headers=h(a)), 404)
    assert_envelope(client.get(f"{SESSIONS}/{a}"), 404, "not_found")
    assert a not in {s["session_id"] for s in all_sessions(client)}
    assert_envelope(client.delete(f"{SESSIONS}/{a}"), 404, "not_found")

    # The other session is untouched.
    assert visible(client, b) == [kept["id"]]
    assert recalled(client, b, "incident report outage", learn=False) == [kept["id"]]

    # The session can be used again, starting empty.
    fresh = create(client, a, "incident report after the reset")
    assert visible(client, a) == [fresh["id"]]
    assert recalled(client, a, "incident report outage", learn=False) == [fresh["id"]]


def test_sessions_count_every_kind_of_memory(client: TestClient) -> None:
    sid = new_session_id("kinds")
    first = client.post("/api/v1/entities", json={"name": "Ada"}, headers=h(sid))
    assert first.status_code == 201, first.text
    r = client.post(
        f"/api/v1/entities/{first.json()['id']}/supersede",
        json={"summary": "v2", "valid_from": "2030-01-01T00:00:00Z"},
        headers=h(sid),
    )
    assert r.status_code == 201, r.text
    assert client.post("/api/v1/entities", json={"name": "Bob"}, headers=h(sid)).status_code == 201
    skill = {"name": "deploy", "task": "ship it", "script": "make deploy"}
    assert client.post("/api/v1/skills", json=skill, headers=h(sid)).status_code == 201

    stats = client.get(f"{SESSIONS}/{sid}").json()
    assert (stats["episodes"], stats["entities"], stats["skills"]) == (0, 3, 1)
    assert {s["session_id"]: s for s in all_sessions(client)}[sid] == stats

    create(client, sid, "and one episode")
    r = client.delete(f"{SESSIONS}/{sid}")
    assert r.status_code == 200, r.text
    assert r.json() == {
        "session_id": sid,
        "deleted_episodes": 1,
        "deleted_entities": 3,
        "deleted_skills": 1,
    }
    assert client.get("/api/v1/entities", headers=h(sid)).json()["items"] == []
    assert client.get("/api/v1/skills", headers=h(sid)).json()["items"] == []


def test_sessions_are_paged_in_id_order(client: TestClient) -> None:
    mine = sorted(new_session_id("page") for _ in range(5))
    for sid in mine:
        create(client, sid, "one note")
    pages = []
    params: dict[str, Any] = {"limit": 2}
    while True:
        r = client.get(SESSIONS, params=params)
        assert r.status_code == 200, r.text
        pages.append([s["session_id"] for s in r.json()["sessions"]])
        if r.json()["next_cursor"] is None:
            break
        params["cursor"] = r.json()["next_cursor"]
    assert all(0 < len(p) <= 2 for p in pages), pages
    walked = [sid for page in pages for sid in page]
    assert walked == sorted(set(walked))
    assert set(mine) <= set(walked)
    everything = client.get(SESSIONS, params={"limit": 500}).json()
    assert [s["session_id"] for s in everything["sessions"]] == walked
    assert everything["next_cursor"] is None
    # A cursor resumes after the id it names, whether or not that session still exists.
    after = client.get(SESSIONS, params={"limit": 500, "cursor": mine[0]}).json()["sessions"]
    assert [s["session_id"] for s in after] == [x for x in walked if x > mine[0]]


@pytest.mark.parametrize("params", [{"cursor": "not a session!"}, {"cursor": "-x"}])
def test_bad_session_cursor_is_400(client: TestClient, params: dict[str, str]) -> None:
    assert_envelope(client.get(SESSIONS, params=params), 400, "invalid_cursor")


@pytest.mark.parametrize("limit", [0, 501])
def test_session_page_limit_is_bounded(client: TestClient, limit: int) -> None:
    assert_envelope(client.get(SESSIONS, params={"limit": limit}), 422, "validation_error")


def test_delete_unknown_session_is_404(client: TestClient) -> None:
    assert_envelope(client.delete(f"{SESSIONS}/{new_session_id('nope')}"), 404, "not_found")
    assert_envelope(client.delete(f"{SESSIONS}/-bad"), 422, "validation_error")


# -- the error envelope -----------------------------------------------------------------------


def test_request_id_is_echoed(client: TestClient) -> None:
    rid = "client-req.42:abc"
    r = client.get(f"{EPISODES}/{MISSING_ID}", headers={"X-Request-ID": rid})
    assert r.headers["x-request-id"] == rid
    assert assert_envelope(r, 404)["request_id"] == rid
    ok = client.get("/api/v1/health", headers={"X-Request-ID": rid})
    assert ok.status_code == 200
    assert ok.headers["x-request-id"] == rid


def test_request_id_is_generated_when_missing_or_invalid(client: TestClient) -> None:
    r1 = client.get(f"{EPISODES}/{MISSING_ID}")
    r2 = client.get(f"{EPISODES}/{MISSING_ID}")
    rid1 = assert_envelope(r1, 404)["request_id"]
    rid2 = assert_envelope(r2, 404)["request_id"]
    assert re.fullmatch(r"[0-9a-f]{32}", rid1)
    assert rid1 != rid2
    for bad in ("has space", "x" * 129, "semi;colon"):
        r = client.get(f"{EPISODES}/{MISSING_ID}", headers={"X-Request-ID": bad})
        rid = assert_envelope(r, 404)["request_id"]
        assert rid != bad
        assert re.fullmatch(r"[0-9a-f]{32}", rid)
    assert "x-request-id" in client.get("/").headers


def test_unknown_route_is_404_envelope(client: TestClient) -> None:
    assert_envelope(client.get("/api/v1/nothing-here"), 404, "not_found")
    assert_envelope(client.post("/api/v2/episodes", json={}), 404, "not_found")


def test_wrong_method_is_405_envelope(client: TestClient) -> None:
    r = client.put(EPISODES, json={"content": "x"})
    assert_envelope(r, 405, "method_not_allowed")
    # Starlette lists only the first matching route's methods, so only presence is checked.
    assert r.headers["allow"]
    assert_envelope(client.delete(EPISODES), 405, "method_not_allowed")
    assert_envelope(client.get(f"{EPISODES}/recall"), 422)  # GET /{id} with id "recall"
    assert_envelope(client.post("/api/v1/health"), 405, "method_not_allowed")


def test_malformed_json_is_422(client: TestClient) -> None:
    headers = {"Content-Type": "application/json", "X-Session-ID": new_session_id()}
    for raw in (b"{not json", b'{"content": "x",}', b"", b"[]", b'"text"'):
        r = client.post(EPISODES, content=raw, headers=headers)
        assert_envelope(r, 422, "validation_error")
    r = client.post(f"{EPISODES}/recall", content=b"{", headers=headers)
    assert_envelope(r, 422, "validation_error")
    assert visible(client, headers["X-Session-ID"]) == []


def test_body_over_the_limit_is_413(small_client: TestClient) -> None:
    sid = new_session_id("big")
    r = small_client.post(EPISODES, json={"content": "y" * 3000}, headers=h(sid))
    err = assert_envelope(r, 413, "payload_too_large")
    assert "2048" in err["message"]
    # The request id is known before the limit answers.
    r = small_client.post(
        EPISODES, json={"content": "y" * 3000}, headers=h(sid, **{"X-Request-ID": "big-1"})
    )
    assert assert_envelope(r, 413)["request_id"] == "big-1"
    # Under the limit is fine.
    ok = small_client.post(EPISODES, json={"content": "y" * 1500}, headers=h(sid))
    assert ok.status_code == 201
    assert len(small_client.get(EPISODES, headers=h(sid)).json()["items"]) == 1


def test_streamed_body_over_the_limit_is_413(small_client: TestClient) -> None:
    """Without a Content-Length the middleware must still count the bytes."""
    sid = new_session_id("chunk")

    def chunks(total: int) -> Iterator[bytes]:
        body = b'{"content": "' + b"z" * total + b'"}'
        for i in range(0, len(body), 512):
            yield body[i : i + 512]

    headers = h(sid, **{"Content-Type": "application/json"})
    r = small_client.post(EPISODES, content=chunks(4000), headers=headers)
    assert_envelope(r, 413, "payload_too_large")
    ok = small_client.post(EPISODES, content=chunks(100), headers=headers)
    assert ok.status_code == 201, ok.text
    assert len(small_client.get(EPISODES, headers=h(sid)).json()["items"]) == 1


@pytest.mark.parametrize(
    "body",
    [
        {"content": "x" * 32_001},
        {"content": "ok", "speaker": "s" * 513},
        {"content": "ok", "source": "s" * 513},
        {"content": "ok", "external_id": "e" * 513},
        {"content": "ok", "context": {"project": "p" * 513}},
        {"content": "ok", "metadata": {f"k{i}": i for i in range(65)}},
        {"content": "ok", "unknown_field": 1},
        {"content": "ok", "context": {"nope": 1}},
        {"content": "ok", "session_id": "someone-else"},
    ],
    ids=[
        "content",
        "speaker",
        "source",
        "external_id",
        "project",
        "metadata-keys",
        "unknown",
        "unknown-context",
        "session-in-body",
    ],
)
def test_field_limits_and_unknown_fields_are_422(client: TestClient, body: dict[str, Any]) -> None:
    sid = new_session_id("lim")
    assert_envelope(client.post(EPISODES, json=body, headers=h(sid)), 422, "validation_error")
    assert_envelope(
        client.post(f"{EPISODES}/batch", json={"episodes": [body]}, headers=h(sid)), 422
    )
    assert visible(client, sid) == []


def test_fields_at_their_limits_are_accepted(client: TestClient) -> None:
    sid = new_session_id("edge")
    body = {"content": "x" * 32_000, "speaker": "s" * 512, "external_id": "e" * 512}
    r = client.post(EPISODES, json=body, headers=h(sid))
    assert r.status_code == 201, r.text
    assert len(r.json()["content"]) == 32_000


@pytest.mark.parametrize("method", ["GET", "PATCH", "DELETE"])
def test_non_uuid_episode_id_is_422(client: TestClient, method: str) -> None:
    body = {"content": "x"} if method == "PATCH" else None
    r = client.request(method, f"{EPISODES}/not-a-uuid", json=body)
    err = assert_envelope(r, 422, "validation_error")
    assert "episode_id" in err["message"]
    assert_envelope(client.post(f"{EPISODES}/12345/mark-important"), 422, "validation_error")


# -- system endpoints -------------------------------------------------------------------------


def test_health(client: TestClient) -> None:
    r = client.get("/api/v1/health")
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "ok"
    assert body["components"] == {"records": "ok", "vectors": "ok", "embedder": "ok"}
    assert isinstance(body["version"], str) and body["version"]


def test_root_lists_endpoints(client: TestClient) -> None:
    r = client.get("/")
    assert r.status_code == 200
    body = r.json()
    assert body["docs"] == "/docs"
    assert body["openapi"] == "/openapi.json"
    endpoints = set(body["endpoints"])
    assert {
        "GET /api/v1/health",
        "POST /api/v1/episodes",
        "GET /api/v1/episodes",
        "POST /api/v1/episodes/batch",
        "POST /api/v1/episodes/recall",
        "GET /api/v1/episodes/{episode_id}",
        "PATCH /api/v1/episodes/{episode_id}",
        "DELETE /api/v1/episodes/{episode_id}",
        "POST /api/v1/episodes/{episode_id}/mark-important",
        "GET /api/v1/sessions",
        "GET /api/v1/sessions/{session_id}",
        "DELETE /api/v1/sessions/{session_id}",
    } <= endpoints


def test_docs_and_schema_are_served(client: TestClient) -> None:
    for path in ("/docs", "/redoc"):
        r = client.get(path)
        assert r.status_code == 200
        assert "text/html" in r.headers["content-type"]
        assert "/openapi.json" in r.text
        # Offline: every asset the page loads comes from this server, none from a CDN.
        assert "//" not in "".join(re.findall(r'(?:src|href)="([^"]*)"', r.text)), r.text
        assets = re.findall(r'(?:src|href)="(/[^"]+)"', r.text)
        assert any(a.endswith(".js") for a in assets), r.text
        for asset in assets:
            got = client.get(asset)
            assert got.status_code == 200, asset
            if asset.endswith(".js"):
                assert "javascript" in got.headers["content-type"]
                assert len(got.content) > 100_000  # the real bundle, not a stub
    schema = client.get("/openapi.json")
    assert schema.status_code == 200
    doc = schema.json()
    assert doc["info"]["title"] == "World Weaver"
    assert "/api/v1/episodes/recall" in doc["paths"]
    params = doc["paths"]["/api/v1/episodes"]["get"]["parameters"]
    assert "X-Session-ID" in {p["name"] for p in params}
