"""Emergency levels and the blocking flags: what is refused with 503 and what still answers,
how health shows them, and that they hold across a restart."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tests.api.control_helpers import ADMIN, ADMIN_ID, USER, control_client, patch_flag
from tests.api.helpers import assert_envelope, scratch_dir
from ww.api.control_gate import READ_POSTS, RETRY_AFTER_S
from ww.embedding import OnnxEmbedder

ANY_ID = "0b0c1d2e-3f40-4152-8364-758697a8b9ca"
WRITES = {"POST", "PUT", "PATCH", "DELETE"}


@pytest.fixture
def data_dir() -> Iterator[Path]:
    with scratch_dir() as tmp:
        yield tmp / "data"


@pytest.fixture
def client(data_dir: Path, onnx_embedder: OnnxEmbedder) -> Iterator[TestClient]:
    with control_client(data_dir, onnx_embedder) as c:
        yield c


def _panic(client: TestClient, level: str, reason: str) -> dict[str, object]:
    r = client.post(
        "/api/v1/control/emergency/panic", json={"level": level, "reason": reason}, headers=ADMIN
    )
    assert r.status_code == 200, r.text
    return dict(r.json())


def _recover(client: TestClient, level: str = "NONE") -> dict[str, object]:
    r = client.post("/api/v1/control/emergency/recover", json={"level": level}, headers=ADMIN)
    assert r.status_code == 200, r.text
    return dict(r.json())


def _store(client: TestClient) -> dict[str, str]:
    r = client.post(
        "/api/v1/episodes", json={"content": "a note on the control plane"}, headers=USER
    )
    return {
        "status": str(r.status_code),
        **({"id": r.json()["id"]} if r.status_code == 201 else {}),
    }


def _reads_answer(client: TestClient) -> None:
    assert client.get("/api/v1/episodes", headers=USER).status_code == 200
    for path in ("/api/v1/recall", "/api/v1/episodes/recall"):
        r = client.post(path, json={"query": "control plane"}, headers=USER)
        assert r.status_code == 200, (path, r.text)


def _operations(client: TestClient) -> list[tuple[str, str]]:
    paths = client.app.openapi()["paths"]  # type: ignore[attr-defined]
    return sorted((m.upper(), p) for p, ops in paths.items() for m in ops)


def _url(path: str) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: "default" if m.group(1) == "session_id" else ANY_ID, path)


def _health(client: TestClient) -> dict[str, object]:
    r = client.get("/api/v1/health")
    assert r.status_code == 200, r.text
    return dict(r.json()["control"])


def test_health_shows_the_control_state(client: TestClient) -> None:
    assert _health(client) == {
        "level": "NONE",
        "reason": None,
        "since": None,
        "read_only_mode": False,
        "maintenance_mode": False,
        "writes": "accepted",
    }


def test_read_only_mode_refuses_every_write_and_answers_reads_and_recall(
    client: TestClient,
) -> None:
    stored = _store(client)
    patch_flag(client, "read_only_mode", True)
    assert _health(client)["writes"] == "refused"
    refused = client.post("/api/v1/episodes", json={"content": "x"}, headers=USER)
    error = assert_envelope(refused, 503, "read_only")
    assert "read_only_mode" in error["message"]
    assert refused.headers["Retry-After"] == str(RETRY_AFTER_S)
    _reads_answer(client)
    assert client.get(f"/api/v1/episodes/{stored['id']}", headers=USER).status_code == 200
    patch_flag(client, "read_only_mode", False)
    assert _store(client)["status"] == "201"


def test_every_write_route_is_refused_and_every_read_route_is_not(client: TestClient) -> None:
    """Each route of the schema, sent while read-only: a write (a POST not in READ_POSTS, a
    PUT, PATCH or DELETE) outside control gets 503; nothing else does."""
    patch_flag(client, "read_only_mode", True)
    wrong = []
    for method, path in _operations(client):
        headers = {**ADMIN, "X-Session-ID": "default"}
        r = client.request(method, _url(path), headers=headers, json={})
        write = method in WRITES and not path.startswith("/api/v1/control")
        if method == "POST" and path in READ_POSTS:
            write = False
        if (r.status_code == 503) != write:
            wrong.append(f"{method} {path}: {r.status_code}")
    assert wrong == []
    posts = {p for m, p in _operations(client) if m == "POST"}
    assert posts >= READ_POSTS, "READ_POSTS names a route that does not exist"


def test_maintenance_mode_answers_only_health_docs_and_control(client: TestClient) -> None:
    patch_flag(client, "maintenance_mode", True)
    for path in ("/api/v1/episodes", "/api/v1/sessions/default"):
        assert_envelope(client.get(path, headers=ADMIN), 503, "maintenance")
    r = client.post("/api/v1/recall", json={"query": "x"}, headers=USER)
    assert_envelope(r, 503, "maintenance")
    for path in ("/", "/api/v1/health", "/openapi.json", "/docs", "/redoc"):
        assert client.get(path).status_code == 200, path
    assert client.head("/api/v1/health").status_code == 200
    assert _health(client)["maintenance_mode"] is True
    assert client.get("/api/v1/control/audit", headers=ADMIN).status_code == 200
    patch_flag(client, "maintenance_mode", False)
    assert client.get("/api/v1/episodes", headers=USER).status_code == 200


def test_an_anonymous_caller_hears_401_not_the_block(client: TestClient) -> None:
    patch_flag(client, "maintenance_mode", True)
    assert_envelope(client.get("/api/v1/episodes"), 401, "unauthorized")


def test_limited_is_read_only_with_its_reason_in_health_and_the_error(client: TestClient) -> None:
    change = _panic(client, "LIMITED", "Maintenance")
    assert change["previous"] == "NONE"
    assert change["emergency"] == {
        **change["emergency"],  # type: ignore[dict-item]
        "level": "LIMITED",
        "reason": "Maintenance",
        "set_by": ADMIN_ID,
    }
    health = _health(client)
    assert (health["level"], health["reason"], health["writes"]) == (
        "LIMITED",
        "Maintenance",
        "refused",
    )
    error = assert_envelope(
        client.post("/api/v1/episodes", json={"content": "x"}, headers=USER),
        503,
        "emergency_limited",
    )
    assert "LIMITED" in error["message"] and "Maintenance" in error["message"]
    _reads_answer(client)
    recovered = _recover(client)
    assert (recovered["previous"], _health(client)["level"]) == ("LIMITED", "NONE")
    assert _store(client)["status"] == "201"


def test_lockdown_answers_only_health_and_control_and_steps_down(client: TestClient) -> None:
    _panic(client, "LOCKDOWN", "credential leak")
    error = assert_envelope(client.get("/api/v1/episodes", headers=USER), 503, "emergency_lockdown")
    assert "credential leak" in error["message"]
    assert client.get("/api/v1/health").json()["control"]["level"] == "LOCKDOWN"
    r = client.get("/api/v1/control/emergency", headers=ADMIN)
    assert (r.status_code, r.json()["level"], r.json()["set_by"]) == (200, "LOCKDOWN", ADMIN_ID)
    _recover(client, "LIMITED")
    assert client.get("/api/v1/episodes", headers=USER).status_code == 200
    assert _store(client)["status"] == "503"
    _recover(client)
    audit = client.get("/api/v1/control/audit", headers=ADMIN).json()["items"]
    assert [(e["kind"], e["old"], e["new"], e["who"]) for e in audit] == [
        ("emergency", "LIMITED", "NONE", ADMIN_ID),
        ("emergency", "LOCKDOWN", "LIMITED", ADMIN_ID),
        ("emergency", "NONE", "LOCKDOWN", ADMIN_ID),
    ]
    assert audit[-1]["reason"] == "credential leak"


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("panic", {"level": "NONE", "reason": "x"}),
        ("panic", {"level": "LIMITED"}),
        ("panic", {"level": "LIMITED", "reason": ""}),
        ("panic", {"level": "PANIC", "reason": "x"}),
        ("recover", {"level": "LOCKDOWN"}),
        ("recover", {"level": "NONE", "extra": True}),
    ],
)
def test_bad_emergency_bodies_get_422(client: TestClient, path: str, body: object) -> None:
    r = client.post(f"/api/v1/control/emergency/{path}", json=body, headers=ADMIN)
    assert_envelope(r, 422, "validation_error")
    assert _health(client)["level"] == "NONE"


def test_recover_does_not_raise_the_level(client: TestClient) -> None:
    r = client.post("/api/v1/control/emergency/recover", json={"level": "LIMITED"}, headers=ADMIN)
    assert_envelope(r, 409, "conflict")
    assert _health(client)["level"] == "NONE"


def test_the_level_survives_a_restart(data_dir: Path, onnx_embedder: OnnxEmbedder) -> None:
    with control_client(data_dir, onnx_embedder) as client:
        _panic(client, "LIMITED", "disk migration")
    with control_client(data_dir, onnx_embedder) as client:
        assert (_health(client)["level"], _health(client)["reason"]) == (
            "LIMITED",
            "disk migration",
        )
        assert _store(client)["status"] == "503"
        _recover(client)
        assert _store(client)["status"] == "201"


def test_the_guides_curl_examples_work_as_written(client: TestClient) -> None:
    """``curl -X POST -d '{...}'`` sends the JSON labelled as a form."""
    form = {**ADMIN, "Content-Type": "application/x-www-form-urlencoded"}
    r = client.post(
        "/api/v1/control/emergency/panic",
        content=b'{"level": "LIMITED", "reason": "Maintenance"}',
        headers=form,
    )
    assert (r.status_code, r.json()["emergency"]["level"]) == (200, "LIMITED")
    r = client.post("/api/v1/control/emergency/recover", content=b'{"level": "NONE"}', headers=form)
    assert (r.status_code, r.json()["emergency"]["level"]) == (200, "NONE")


@pytest.mark.parametrize("block", ["LIMITED", "LOCKDOWN", "read_only_mode", "maintenance_mode"])
def test_scheduled_consolidation_waits_while_writes_are_refused(
    client: TestClient, block: str
) -> None:
    scheduler = client.app.state.scheduler  # type: ignore[attr-defined]
    assert scheduler._due()  # the one predicate the loop asks before a pass
    if block.isupper():
        _panic(client, block, "disk swap")
    else:
        patch_flag(client, block, True)
    assert not scheduler._due()
    if block.isupper():
        _recover(client)
    else:
        patch_flag(client, block, False)
    assert scheduler._due()  # the one predicate the loop asks before a pass
