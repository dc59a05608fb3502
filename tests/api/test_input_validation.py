"""Input the stores cannot keep as given is refused with a 422 naming the field, and the
error envelope speaks the caller's terms: integers outside 64 bits, non-finite numbers,
whitespace-only text, malformed JSON, union and validator internals in ``loc``.

Runs on SQLite records by default and on Neo4j with ``--server-tier``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.api.helpers import assert_envelope, new_session_id, running_client, scratch_dir
from tests.conftest import ManualClock
from ww.embedding import OnnxEmbedder

EPISODES = "/api/v1/episodes"
INT64_MAX = 2**63 - 1
INT64_MIN = -(2**63)


@pytest.fixture(scope="module")
def shared_client(onnx_embedder: OnnxEmbedder) -> Iterator[TestClient]:
    with scratch_dir() as tmp, running_client(tmp / "data", onnx_embedder, ManualClock()) as c:
        yield c


@pytest.fixture
def client(shared_client: TestClient) -> Iterator[TestClient]:
    shared_client.headers["X-Session-ID"] = new_session_id("val")
    yield shared_client


def raw_post(client: TestClient, url: str, text: str) -> Any:
    """A body the test writes by hand: ``json=`` would refuse NaN or reformat big ints."""
    return client.post(url, content=text.encode(), headers={"Content-Type": "application/json"})


def stored(client: TestClient) -> list[dict[str, Any]]:
    r = client.get(EPISODES, params={"limit": 200, "include_archived": "true"})
    assert r.status_code == 200, r.text
    items: list[dict[str, Any]] = r.json()["items"]
    return items


# -- 64-bit integers --------------------------------------------------------------------------


@pytest.mark.parametrize("n", [INT64_MAX + 1, INT64_MIN - 1, 10**30])
def test_integer_outside_64_bits_is_refused_on_write(client: TestClient, n: int) -> None:
    for url, body, field in (
        (EPISODES, f'{{"content": "x", "metadata": {{"n": {n}}}}}', "metadata.n"),
        (
            EPISODES,
            f'{{"content": "x", "context": {{"extra": {{"n": {n}}}}}}}',
            "context.extra.n",
        ),
        (
            f"{EPISODES}/batch",
            f'{{"episodes": [{{"content": "x", "metadata": {{"n": {n}}}}}]}}',
            "episodes.0.metadata.n",
        ),
        (
            "/api/v1/skills",
            '{"name": "s", "task": "t", "steps": [{"order": 1, "action": "a", '
            f'"parameters": {{"n": {n}}}}}]}}',
            "steps.0.parameters.n",
        ),
    ):
        err = assert_envelope(raw_post(client, url, body), 422, "validation_error")
        assert err["message"].startswith(f"{field}: "), err
        assert "64 bits" in err["message"]
    assert stored(client) == []
    ep = client.post(EPISODES, json={"content": "x"}).json()
    r = client.patch(
        f"{EPISODES}/{ep['id']}",
        content=f'{{"metadata": {{"n": {n}}}}}'.encode(),
        headers={"Content-Type": "application/json"},
    )
    assert "metadata.n: " in assert_envelope(r, 422)["message"]
    assert client.get(f"{EPISODES}/{ep['id']}").json()["metadata"] == {}


@pytest.mark.parametrize("n", [INT64_MAX + 1, INT64_MIN - 1])
def test_integer_outside_64_bits_is_refused_in_filters(client: TestClient, n: int) -> None:
    r = client.get(EPISODES, params={"metadata": f'{{"n": {n}}}'})
    err = assert_envelope(r, 422, "validation_error")
    assert "metadata.n" in err["message"] and "64 bits" in err["message"]
    for url in (f"{EPISODES}/recall", "/api/v1/recall"):
        body = f'{{"query": "q", "filters": {{"metadata": {{"n": {n}}}}}}}'
        err = assert_envelope(raw_post(client, url, body), 422, "validation_error")
        assert err["message"].startswith("filters.metadata.n: "), err
        assert "64 bits" in err["message"]


def test_64_bit_extremes_are_stored_exactly_and_filterable(client: TestClient) -> None:
    for n in (INT64_MAX, INT64_MIN):
        r = raw_post(client, EPISODES, f'{{"content": "limit {n}", "metadata": {{"n": {n}}}}}')
        assert r.status_code == 201, r.text
        assert r.json()["metadata"] == {"n": n}
        got = client.get(EPISODES, params={"metadata": f'{{"n": {n}}}'}).json()["items"]
        assert [e["metadata"]["n"] for e in got] == [n]
        for url, ids in ((f"{EPISODES}/recall", "hits"), ("/api/v1/recall", "hits")):
            body = f'{{"query": "limit", "learn": false, "filters": {{"metadata": {{"n": {n}}}}}}}'
            hits = raw_post(client, url, body)
            assert hits.status_code == 200, hits.text
            assert [h["id"] for h in hits.json()[ids]] == [r.json()["id"]]


# -- non-finite numbers -----------------------------------------------------------------------


@pytest.mark.parametrize("value", ["NaN", "Infinity", "-Infinity", "1e999"])
def test_non_finite_metadata_is_refused(client: TestClient, value: str) -> None:
    for body, field in (
        (f'{{"content": "x", "metadata": {{"v": {value}}}}}', "metadata.v"),
        (f'{{"content": "x", "context": {{"extra": {{"v": {value}}}}}}}', "context.extra.v"),
    ):
        err = assert_envelope(raw_post(client, EPISODES, body), 422, "validation_error")
        assert err["message"].startswith(f"{field}: "), err
        assert "finite" in err["message"]
    assert stored(client) == []


def test_finite_float_metadata_is_kept(client: TestClient) -> None:
    r = raw_post(client, EPISODES, '{"content": "x", "metadata": {"v": 1e308, "w": -0.5}}')
    assert r.status_code == 201, r.text
    assert r.json()["metadata"] == {"v": 1e308, "w": -0.5}


# -- whitespace-only text ---------------------------------------------------------------------


@pytest.mark.parametrize("blank", [" ", "\n\t  \r\n", "\u3000"])
def test_whitespace_only_text_is_refused(client: TestClient, blank: str) -> None:
    err = assert_envelope(client.post(EPISODES, json={"content": blank}), 422)
    assert err["message"].startswith("content: "), err
    err = assert_envelope(
        client.post(f"{EPISODES}/batch", json={"episodes": [{"content": blank}]}), 422
    )
    assert err["message"].startswith("episodes.0.content: "), err
    assert stored(client) == []
    ep = client.post(EPISODES, json={"content": "kept"}).json()
    err = assert_envelope(client.patch(f"{EPISODES}/{ep['id']}", json={"content": blank}), 422)
    assert err["message"].startswith("content: "), err
    assert client.get(f"{EPISODES}/{ep['id']}").json()["content"] == "kept"

    err = assert_envelope(client.post("/api/v1/entities", json={"name": blank}), 422)
    assert err["message"].startswith("name: "), err
    for body, field in (
        ({"name": blank, "task": "t", "script": "run"}, "name"),
        ({"name": "s", "task": blank, "script": "run"}, "task"),
        ({"name": "s", "task": "t", "script": blank}, "script"),
        ({"name": "s", "task": "t", "steps": [{"order": 1, "action": blank}]}, "steps.0.action"),
    ):
        err = assert_envelope(client.post("/api/v1/skills", json=body), 422)
        assert err["message"].startswith(f"{field}: "), err


def test_content_with_text_around_whitespace_is_kept(client: TestClient) -> None:
    r = client.post(EPISODES, json={"content": "  padded  "})
    assert r.status_code == 201, r.text
    assert r.json()["content"] == "  padded  "


# -- the envelope speaks the caller's terms ---------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "where"),
    [
        (b'{"content": "x",}', "line 1, column 17"),
        (b'{\n  "content": "x"\n  "speaker": "y"\n}', "line 3, column 3"),
        (b"{not json", "line 1, column 2"),
    ],
)
def test_malformed_json_says_where(client: TestClient, raw: bytes, where: str) -> None:
    r = client.post(EPISODES, content=raw, headers={"Content-Type": "application/json"})
    err = assert_envelope(r, 422, "validation_error")
    assert "not valid JSON" in err["message"]
    assert where in err["message"], err
    assert "decode error" not in err["message"]
    assert not err["message"].startswith(tuple("0123456789"))


def test_skill_steps_errors_name_the_field_without_internals(client: TestClient) -> None:
    dup = [{"order": 1, "action": "a"}, {"order": 1, "action": "b"}]
    err = assert_envelope(
        client.post("/api/v1/skills", json={"name": "s", "task": "t", "steps": dup}), 422
    )
    assert err["message"] == "steps: step orders must be unique", err
    skill = client.post("/api/v1/skills", json={"name": "s", "task": "t", "script": "run"})
    assert skill.status_code == 201, skill.text
    url = f"/api/v1/skills/{skill.json()['id']}"
    err = assert_envelope(client.patch(url, json={"steps": dup}), 422)
    assert err["message"] == "steps: step orders must be unique", err
    err = assert_envelope(client.patch(url, json={"steps": [{"order": 0, "action": "a"}]}), 422)
    assert err["message"].startswith("steps.0.order: "), err
    assert "function-after" not in err["message"] and "none" not in err["message"].lower()


@pytest.mark.parametrize(
    ("url_kind", "body", "loc"),
    [
        ("episode", {"metadata": {"k": [1]}}, "metadata.k"),
        ("episode", {"metadata": {"str": {"a": 1}}}, "metadata.str"),
        ("episode", {"context": {"project": "p" * 600}}, "context.project"),
        ("episode", {"timestamp": "not a time"}, "timestamp"),
        ("new", {"content": "x", "metadata": {"bad key": 1}}, "metadata.bad key.[key]"),
        ("new", {"metadata": {}}, "content"),
    ],
)
def test_error_locations_are_the_callers(
    client: TestClient, url_kind: str, body: dict[str, Any], loc: str
) -> None:
    if url_kind == "new":
        r = client.post(EPISODES, json=body)
    else:
        ep = client.post(EPISODES, json={"content": "x"}).json()
        r = client.patch(f"{EPISODES}/{ep['id']}", json=body)
    err = assert_envelope(r, 422, "validation_error")
    assert err["message"].startswith(f"{loc}: "), err
    for internal in ("[", "function-", "constrained-", "EpisodeContext", "Input should be None"):
        assert internal not in err["message"].replace("[key]", "").split(": ", 1)[0], err
    assert "Input should be None" not in err["message"]


def test_head_health(client: TestClient) -> None:
    r = client.head("/api/v1/health")
    assert r.status_code == 200
    assert r.content == b""
    assert json.loads(client.get("/api/v1/health").text)["status"] == "ok"
