"""The ``/api/v1/skills`` endpoints, end to end through HTTP on the embedded tier.

One app serves the module; every test acts in a session of its own (see ``helpers``).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest
from fastapi.testclient import TestClient

from tests.api.helpers import assert_envelope, new_session_id, parse_ts, running_client, scratch_dir
from tests.conftest import ManualClock
from tests.factories import T0
from ww.embedding import OnnxEmbedder

BASE = "/api/v1/skills"

_CLOCK = ManualClock()

STEPS = [
    {"order": 1, "action": "Build the image", "tool": "docker", "parameters": {"tag": "v2"}},
    {"order": 2, "action": "Push the image", "tool": "docker", "expected_outcome": "pushed"},
]


@pytest.fixture(scope="module")
def shared_client(onnx_embedder: OnnxEmbedder) -> Iterator[TestClient]:
    with scratch_dir() as tmp, running_client(tmp / "data", onnx_embedder, _CLOCK) as c:
        yield c


@pytest.fixture
def clock() -> ManualClock:
    _CLOCK.now = T0
    return _CLOCK


@pytest.fixture
def session() -> str:
    return new_session_id("skl")


@pytest.fixture
def client(shared_client: TestClient, clock: ManualClock, session: str) -> Iterator[TestClient]:
    shared_client.headers["X-Session-ID"] = session
    yield shared_client
    del shared_client.headers["X-Session-ID"]


def create(client: TestClient, name: str = "deploy", **body: Any) -> dict[str, Any]:
    body.setdefault("task", f"{name} the web service to production")
    if "script" not in body:
        body.setdefault("steps", STEPS)
    r = client.post(BASE, json={"name": name, **body})
    assert r.status_code == 201, r.text
    return dict(r.json())


def execute(client: TestClient, skill_id: str, **body: Any) -> dict[str, Any]:
    r = client.post(f"{BASE}/{skill_id}/execute", json=body)
    assert r.status_code == 200, r.text
    return dict(r.json())


# -- create / get / list ------------------------------------------------------------------------
def test_create_generates_the_script_from_steps(client: TestClient, session: str) -> None:
    s = create(client, domain="ops", trigger_pattern="deploy*")
    assert s["session_id"] == session and s["domain"] == "ops"
    assert s["script_generated"] is True
    assert s["script"] == (
        "# deploy\n"
        '1. Build the image [tool: docker] (tag="v2")\n'
        "2. Push the image [tool: docker] -> expect: pushed\n"
    )
    assert s["version"] == 1 and s["success_rate"] == 0.5 and s["execution_count"] == 0
    assert s["deprecated"] is False and s["index_state"] == "indexed"
    assert client.get(f"{BASE}/{s['id']}").json() == s


def test_create_with_script_only_keeps_it(client: TestClient) -> None:
    s = create(client, "backup", script="pg_dump db > db.sql")
    assert s["script"] == "pg_dump db > db.sql" and s["steps"] == []
    assert s["script_generated"] is False


def test_steps_come_back_in_order(client: TestClient) -> None:
    s = create(client, steps=list(reversed(STEPS)))
    assert [st["order"] for st in s["steps"]] == [1, 2]


@pytest.mark.parametrize(
    "body",
    [
        {"name": "x", "task": "t"},  # neither steps nor script
        {"name": "", "task": "t", "script": "s"},
        {"name": "x", "task": "", "script": "s"},
        {"name": "x", "task": "t", "steps": [{"order": 1, "action": "a"}] * 2},
        {"name": "x", "task": "t", "steps": [{"order": 0, "action": "a"}]},
        {"name": "x", "task": "t", "steps": [{"order": 1, "action": ""}]},
        {"name": "x", "task": "t", "script": ""},
        {"name": "x", "task": "t", "script": "s", "extra": 1},
    ],
)
def test_create_rejects_invalid_bodies(client: TestClient, body: dict[str, Any]) -> None:
    assert_envelope(client.post(BASE, json=body), 422, "validation_error")


def test_list_domain_deprecated_and_pagination(client: TestClient, clock: ManualClock) -> None:
    made = []
    for i in range(4):
        clock.advance(minutes=1)
        made.append(create(client, f"k{i}", domain="ops" if i < 2 else "dev"))
    client.post(f"{BASE}/{made[0]['id']}/deprecate")
    names = [s["name"] for s in client.get(BASE).json()["items"]]
    assert names == ["k3", "k2", "k1"]
    ops = client.get(BASE, params={"domain": "ops", "include_deprecated": True}).json()["items"]
    assert [s["name"] for s in ops] == ["k1", "k0"]
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 3, "include_deprecated": True}
        if cursor:
            params["cursor"] = cursor
        page = client.get(BASE, params=params).json()
        seen += [s["name"] for s in page["items"]]
        if (cursor := page["next_cursor"]) is None:
            break
    assert seen == ["k3", "k2", "k1", "k0"]
    assert_envelope(client.get(BASE, params={"cursor": "%%%"}), 400, "invalid_cursor")
    assert_envelope(client.get(BASE, params={"limit": 500}), 422)


def test_unknown_ids_are_404(client: TestClient) -> None:
    ghost = uuid4()
    assert_envelope(client.get(f"{BASE}/{ghost}"), 404, "not_found")
    assert_envelope(client.patch(f"{BASE}/{ghost}", json={"name": "x"}), 404)
    assert_envelope(client.delete(f"{BASE}/{ghost}"), 404)
    assert_envelope(client.post(f"{BASE}/{ghost}/execute", json={"success": True}), 404)
    assert_envelope(client.post(f"{BASE}/{ghost}/deprecate"), 404)
    assert_envelope(client.get(f"{BASE}/{ghost}/versions"), 404)
    assert_envelope(client.get(f"{BASE}/{ghost}/executions"), 404)
    assert_envelope(client.get(f"{BASE}/not-a-uuid"), 422)


# -- update / versions / delete -----------------------------------------------------------------
def test_update_bumps_version_and_keeps_the_previous(
    client: TestClient, clock: ManualClock
) -> None:
    v1 = create(client)
    clock.advance(hours=1)
    new_steps = [{"order": 1, "action": "Run the deploy pipeline", "tool": "ci"}]
    r = client.patch(f"{BASE}/{v1['id']}", json={"steps": new_steps, "task": "ship it"})
    assert r.status_code == 200, r.text
    v2 = r.json()
    assert v2["version"] == 2 and v2["task"] == "ship it"
    assert v2["script"] == "# deploy\n1. Run the deploy pipeline [tool: ci]\n"
    assert parse_ts(v2["updated_at"]) > parse_ts(v1["updated_at"])
    versions = client.get(f"{BASE}/{v1['id']}/versions").json()
    assert versions["current"] == v2
    assert [p["version"] for p in versions["previous"]] == [1]
    assert versions["previous"][0]["skill"] == v1
    clock.advance(hours=1)
    v3 = client.patch(f"{BASE}/{v1['id']}", json={"script": "make deploy"}).json()
    assert v3["version"] == 3 and v3["script"] == "make deploy" and not v3["script_generated"]
    # New steps under a hand-written script leave the script alone.
    v4 = client.patch(f"{BASE}/{v1['id']}", json={"steps": STEPS}).json()
    assert v4["script"] == "make deploy" and v4["version"] == 4
    # An explicit null script is generated afresh from the steps.
    v5 = client.patch(f"{BASE}/{v1['id']}", json={"script": None}).json()
    assert v5["script_generated"] and v5["script"].startswith("# deploy\n1. Build the image")
    previous = client.get(f"{BASE}/{v1['id']}/versions").json()["previous"]
    assert [p["version"] for p in previous] == [1, 2, 3, 4]


def test_update_errors(client: TestClient) -> None:
    s = create(client, "backup", script="pg_dump")
    assert_envelope(client.patch(f"{BASE}/{s['id']}", json={"name": None}), 422)
    assert_envelope(client.patch(f"{BASE}/{s['id']}", json={"steps": None}), 422)
    # No steps to write a script from.
    assert_envelope(client.patch(f"{BASE}/{s['id']}", json={"script": None}), 422)
    assert client.get(f"{BASE}/{s['id']}").json()["version"] == 1


def test_update_task_is_reflected_in_recall(client: TestClient) -> None:
    s = create(client, "prune", task="water the tomato plants", script="water")
    client.patch(f"{BASE}/{s['id']}", json={"task": "rotate the TLS certificates"})
    hits = client.post(f"{BASE}/recall", json={"query": "renew TLS certificates"}).json()["hits"]
    assert hits[0]["id"] == s["id"]


def test_delete_then_404(client: TestClient) -> None:
    s = create(client)
    execute(client, s["id"], success=True)
    assert client.delete(f"{BASE}/{s['id']}").status_code == 204
    assert_envelope(client.get(f"{BASE}/{s['id']}"), 404)
    assert_envelope(client.delete(f"{BASE}/{s['id']}"), 404)
    assert client.post(f"{BASE}/recall", json={"query": "deploy"}).json()["hits"] == []


# -- execute ------------------------------------------------------------------------------------
def test_execute_updates_the_beta_posterior(client: TestClient, clock: ManualClock) -> None:
    s = create(client)
    rates = []
    for success in (True, True, False, True):
        clock.advance(minutes=5)
        body: dict[str, Any] = {"success": success, "duration_ms": 1500.0}
        if not success:
            body |= {"failed_step": 2, "error": "registry timeout"}
        out = execute(client, s["id"], **body)
        rates.append(out["skill"]["success_rate"])
        assert out["execution"]["success"] is success
        assert out["execution"]["skill_version"] == 1
    # (s + 1) / (s + f + 2) after each run: 2/3, 3/4, 3/5, 4/6.
    assert rates == pytest.approx([2 / 3, 3 / 4, 3 / 5, 4 / 6])
    got = client.get(f"{BASE}/{s['id']}").json()
    assert (got["successes"], got["failures"], got["execution_count"]) == (3, 1, 4)
    assert parse_ts(got["last_executed"]) == clock.now
    runs = client.get(f"{BASE}/{s['id']}/executions").json()["items"]
    assert [r["success"] for r in runs] == [True, False, True, True]  # newest first
    assert runs[1]["failed_step"] == 2 and runs[1]["error"] == "registry timeout"
    assert runs[1]["duration_ms"] == 1500.0


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"success": False, "failed_step": 9}, 422),  # no such step
        ({"success": True, "failed_step": 1}, 422),  # a success has no failing step
        ({"success": False, "duration_ms": -1}, 422),
        ({}, 422),
    ],
)
def test_execute_rejects_bad_outcomes(
    client: TestClient, body: dict[str, Any], status: int
) -> None:
    s = create(client)
    assert_envelope(client.post(f"{BASE}/{s['id']}/execute", json=body), status)
    assert client.get(f"{BASE}/{s['id']}").json()["execution_count"] == 0


# -- deprecate ----------------------------------------------------------------------------------
def test_deprecate_with_replacement(client: TestClient) -> None:
    old, new = create(client, "deploy v1"), create(client, "deploy v2")
    r = client.post(f"{BASE}/{old['id']}/deprecate", json={"replaced_by": new["id"]})
    assert r.status_code == 200, r.text
    assert r.json()["deprecated"] is True and r.json()["replaced_by"] == new["id"]
    hits = client.post(f"{BASE}/recall", json={"query": "deploy the web service"}).json()["hits"]
    assert [h["id"] for h in hits] == [new["id"]]
    every = client.post(
        f"{BASE}/recall", json={"query": "deploy the web service", "include_deprecated": True}
    ).json()["hits"]
    assert {h["id"] for h in every} == {old["id"], new["id"]}
    assert client.post(f"{BASE}/how-to", json={"task": "deploy"}).json()["skill"]["id"] == new["id"]


def test_deprecate_again_keeps_the_replacement(client: TestClient) -> None:
    old, new = create(client, "deploy v1"), create(client, "deploy v2")
    client.post(f"{BASE}/{old['id']}/deprecate", json={"replaced_by": new["id"]})
    for body in (None, {}):
        again = client.post(f"{BASE}/{old['id']}/deprecate", json=body)
        assert again.status_code == 200, again.text
        assert again.json()["replaced_by"] == new["id"]
    assert client.get(f"{BASE}/{old['id']}").json()["replaced_by"] == new["id"]
    # Only an explicit null clears it.
    cleared = client.post(f"{BASE}/{old['id']}/deprecate", json={"replaced_by": None})
    assert cleared.json()["replaced_by"] is None and cleared.json()["deprecated"] is True


def test_deprecate_errors(client: TestClient) -> None:
    s = create(client)
    assert_envelope(client.post(f"{BASE}/{s['id']}/deprecate", json={"replaced_by": s["id"]}), 422)
    r = client.post(f"{BASE}/{s['id']}/deprecate", json={"replaced_by": str(uuid4())})
    assert_envelope(r, 404)
    assert client.get(f"{BASE}/{s['id']}").json()["deprecated"] is False
    assert client.post(f"{BASE}/{s['id']}/deprecate").json()["replaced_by"] is None


# -- recall and how-to --------------------------------------------------------------------------
def test_recall_domain_filter_and_score_parts(client: TestClient) -> None:
    ops = create(client, "restart", domain="ops", task="restart the database server")
    create(client, "cook", domain="kitchen", task="cook pasta al dente")
    r = client.post(f"{BASE}/recall", json={"query": "restart database", "learn": False})
    hit = r.json()["hits"][0]
    assert hit["id"] == ops["id"] and hit["memory_type"] == "skill"
    parts = hit["score_parts"]
    assert set(parts) == {"semantic", "keyword", "success_rate", "base_level"}
    assert parts["success_rate"] == 0.5 and parts["keyword"] == 1.0
    expected = (
        0.60 * parts["semantic"]
        + 0.20 * parts["keyword"]
        + 0.15 * parts["success_rate"]
        + 0.05 * parts["base_level"]
    )
    assert hit["score"] == pytest.approx(expected)
    kitchen = client.post(
        f"{BASE}/recall", json={"query": "restart database", "domain": "kitchen"}
    ).json()["hits"]
    assert {h["skill"]["domain"] for h in kitchen} == {"kitchen"}
    assert_envelope(client.post(f"{BASE}/recall", json={"query": ""}), 422)


def test_recall_learn_counts_access(client: TestClient) -> None:
    s = create(client)
    client.post(f"{BASE}/recall", json={"query": "deploy", "learn": False})
    assert client.get(f"{BASE}/{s['id']}").json()["access_count"] == 0
    client.post(f"{BASE}/recall", json={"query": "deploy"})
    assert client.get(f"{BASE}/{s['id']}").json()["access_count"] == 1


def test_how_to_combines_similarity_and_success_rate(client: TestClient) -> None:
    good = create(client, "deploy-a", task="deploy the web service")
    flaky = create(client, "deploy-b", task="deploy the web service")
    for _ in range(3):
        execute(client, good["id"], success=True)
        execute(client, flaky["id"], success=False, failed_step=1)
    r = client.post(f"{BASE}/how-to", json={"task": "deploy the web service"})
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["skill"]["id"] == good["id"]
    assert out["steps"] == good["steps"]
    assert out["success_rate"] == pytest.approx(4 / 5)
    assert out["similarity"] == pytest.approx(1.0, abs=1e-3)  # the same text
    assert out["confidence"] == pytest.approx(0.7 * out["similarity"] + 0.3 * 0.8)
    assert out["confidence_formula"] == "confidence = 0.7 * similarity + 0.3 * success_rate"
    assert [a["id"] for a in out["alternatives"]] == [flaky["id"]]


def test_how_to_answers_null_for_an_unrelated_task(client: TestClient) -> None:
    s = create(client, "deploy", task="deploy the web service")
    out = client.post(f"{BASE}/how-to", json={"task": "bake a chocolate cake"}).json()
    assert out["skill"] is None and out["alternatives"] == [] and out["similarity"] == 0.0
    out = client.post(f"{BASE}/how-to", json={"task": "what is the capital of France"}).json()
    assert out["skill"] is None
    assert client.get(f"{BASE}/{s['id']}").json()["access_count"] == 0
    related = client.post(f"{BASE}/how-to", json={"task": "how do I deploy the website?"}).json()
    assert related["skill"]["id"] == s["id"] and related["similarity"] >= 0.2
    assert client.get(f"{BASE}/{s['id']}").json()["access_count"] == 1


def test_how_to_with_nothing_to_offer(client: TestClient) -> None:
    out = client.post(f"{BASE}/how-to", json={"task": "fly a kite"}).json()
    assert out["skill"] is None and out["confidence"] == 0.0 and out["steps"] == []
    assert_envelope(client.post(f"{BASE}/how-to", json={"task": ""}), 422)


# -- isolation and persistence ------------------------------------------------------------------
def test_other_sessions_ids_are_not_found(client: TestClient) -> None:
    s = create(client, "secret")
    other = {"X-Session-ID": new_session_id("intruder")}
    for method, path, body in [
        ("GET", f"{BASE}/{s['id']}", None),
        ("PATCH", f"{BASE}/{s['id']}", {"name": "z"}),
        ("DELETE", f"{BASE}/{s['id']}", None),
        ("POST", f"{BASE}/{s['id']}/execute", {"success": True}),
        ("POST", f"{BASE}/{s['id']}/deprecate", {}),
        ("GET", f"{BASE}/{s['id']}/versions", None),
        ("GET", f"{BASE}/{s['id']}/executions", None),
    ]:
        assert_envelope(client.request(method, path, json=body, headers=other), 404)
    assert client.get(BASE, headers=other).json()["items"] == []
    recall = client.post(f"{BASE}/recall", json={"query": "secret deploy"}, headers=other)
    assert recall.json()["hits"] == []
    assert (
        client.post(f"{BASE}/how-to", json={"task": "deploy"}, headers=other).json()["skill"]
        is None
    )
    # A replacement from another session is unknown too.
    mine = create(client, "mine")
    foreign = client.post(
        BASE, json={"name": "f", "task": "t", "script": "s"}, headers=other
    ).json()
    r = client.post(f"{BASE}/{mine['id']}/deprecate", json={"replaced_by": foreign["id"]})
    assert_envelope(r, 404)
    got = client.get(f"{BASE}/{s['id']}").json()
    assert got["name"] == "secret" and got["execution_count"] == 0


def test_skills_versions_and_executions_survive_a_restart(
    onnx_embedder: OnnxEmbedder, tmp_path: Path
) -> None:
    clock = ManualClock()
    data = tmp_path / "data"
    with running_client(data, onnx_embedder, clock) as c:
        c.headers["X-Session-ID"] = "persist"
        s = create(c)
        execute(c, s["id"], success=False, failed_step=2)
        c.patch(f"{BASE}/{s['id']}", json={"name": "deploy v2"})
    with running_client(data, onnx_embedder, clock) as c:
        c.headers["X-Session-ID"] = "persist"
        got = c.get(f"{BASE}/{s['id']}").json()
        assert got["version"] == 2 and got["failures"] == 1
        assert got["success_rate"] == pytest.approx(1 / 3)
        assert [v["version"] for v in c.get(f"{BASE}/{s['id']}/versions").json()["previous"]] == [1]
        assert c.get(f"{BASE}/{s['id']}/executions").json()["items"][0]["failed_step"] == 2
        hit = c.post(f"{BASE}/recall", json={"query": "deploy web service"}).json()["hits"][0]
        assert hit["id"] == s["id"]
