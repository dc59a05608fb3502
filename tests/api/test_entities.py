"""The ``/api/v1/entities`` endpoints, end to end through HTTP on the embedded tier.

One app serves the module; every test acts in a session of its own (see ``helpers``).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest
from fastapi.testclient import TestClient

from tests.api.helpers import assert_envelope, new_session_id, parse_ts, running_client, scratch_dir
from tests.conftest import ManualClock
from tests.factories import T0
from ww.embedding import OnnxEmbedder

BASE = "/api/v1/entities"

_CLOCK = ManualClock()


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
    return new_session_id("ent")


@pytest.fixture
def client(shared_client: TestClient, clock: ManualClock, session: str) -> Iterator[TestClient]:
    shared_client.headers["X-Session-ID"] = session
    yield shared_client
    del shared_client.headers["X-Session-ID"]


def create(client: TestClient, name: str = "Python", **body: Any) -> dict[str, Any]:
    body.setdefault("summary", f"{name} is a thing")
    r = client.post(BASE, json={"name": name, **body})
    assert r.status_code == 201, r.text
    return dict(r.json())


def relate(client: TestClient, a: str, b: str, weight: float, kind: str = "USES") -> dict[str, Any]:
    r = client.post(
        f"{BASE}/{a}/relations", json={"target_id": b, "relation_type": kind, "weight": weight}
    )
    assert r.status_code == 201, r.text
    return dict(r.json())


def recall(client: TestClient, query: str, **body: Any) -> dict[str, Any]:
    r = client.post(f"{BASE}/recall", json={"query": query, **body})
    assert r.status_code == 200, r.text
    return dict(r.json())


# -- create / get / list ------------------------------------------------------------------------
def test_create_get_defaults(client: TestClient, session: str) -> None:
    e = create(client, "Ana Lima", entity_type="PERSON", details="on-call lead", source="wiki")
    assert e["session_id"] == session
    assert e["lineage_id"] == e["id"] and e["version"] == 1
    assert e["entity_type"] == "PERSON" and e["details"] == "on-call lead"
    assert parse_ts(e["valid_from"]) == T0 and e["valid_to"] is None
    assert e["index_state"] == "indexed" and e["access_count"] == 0
    assert client.get(f"{BASE}/{e['id']}").json() == e
    minimal = client.post(BASE, json={"name": "x"}).json()
    assert minimal["entity_type"] == "CONCEPT" and minimal["summary"] == ""


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"name": ""},
        {"name": "x", "entity_type": "WIDGET"},
        {"name": "x", "unknown": 1},
        {"name": "x" * 513},
        {"name": "x", "valid_from": "not a date"},
    ],
)
def test_create_rejects_invalid_bodies(client: TestClient, body: dict[str, Any]) -> None:
    assert_envelope(client.post(BASE, json=body), 422, "validation_error")


def test_unknown_and_malformed_ids(client: TestClient) -> None:
    assert_envelope(client.get(f"{BASE}/{uuid4()}"), 404, "not_found")
    assert_envelope(client.get(f"{BASE}/not-a-uuid"), 422)
    assert_envelope(client.delete(f"{BASE}/{uuid4()}"), 404)
    assert_envelope(client.patch(f"{BASE}/{uuid4()}", json={"name": "y"}), 404)
    assert_envelope(client.get(f"{BASE}/{uuid4()}/history"), 404)


def test_list_filters_by_type_and_pages(client: TestClient, clock: ManualClock) -> None:
    made = []
    for i in range(5):
        clock.advance(minutes=1)
        made.append(create(client, f"e{i}", entity_type="PERSON" if i % 2 else "TOOL"))
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = client.get(BASE, params=params).json()
        seen += [e["id"] for e in page["items"]]
        if (cursor := page["next_cursor"]) is None:
            break
    assert seen == [e["id"] for e in reversed(made)]
    people = client.get(BASE, params={"entity_type": "PERSON"}).json()["items"]
    assert [e["name"] for e in people] == ["e3", "e1"]
    assert_envelope(client.get(BASE, params={"cursor": "garbage!"}), 400, "invalid_cursor")
    assert_envelope(client.get(BASE, params={"limit": 0}), 422)
    assert_envelope(client.get(BASE, params={"entity_type": "WIDGET"}), 422)


# -- update / delete ----------------------------------------------------------------------------
def test_patch_corrects_in_place_and_reembeds(client: TestClient) -> None:
    e = create(client, "Orchard", summary="apple trees on the hill")
    r = client.patch(f"{BASE}/{e['id']}", json={"summary": "a quantum computing lab"})
    assert r.status_code == 200, r.text
    got = r.json()
    assert got["summary"] == "a quantum computing lab" and got["version"] == 1
    assert got["index_state"] == "indexed"
    hits = recall(client, "quantum computers", learn=False)["hits"]
    assert hits[0]["id"] == e["id"] and hits[0]["score_parts"]["semantic"] > 0.3
    assert_envelope(client.patch(f"{BASE}/{e['id']}", json={"name": None}), 422)
    assert_envelope(client.patch(f"{BASE}/{e['id']}", json={"valid_to": None}), 422)


def test_delete_then_404(client: TestClient) -> None:
    a, b = create(client, "a"), create(client, "b")
    relate(client, a["id"], b["id"], 0.5)
    assert client.delete(f"{BASE}/{a['id']}").status_code == 204
    assert_envelope(client.get(f"{BASE}/{a['id']}"), 404)
    assert_envelope(client.delete(f"{BASE}/{a['id']}"), 404)
    assert client.get(f"{BASE}/{b['id']}/relations").json()["items"] == []
    assert [h["id"] for h in recall(client, "a is a thing", learn=False)["hits"]] == [b["id"]]


# -- bi-temporal versions -----------------------------------------------------------------------
def test_supersede_history_and_as_of_recall(client: TestClient, clock: ManualClock) -> None:
    v1 = create(client, "Billing service", summary="billing runs on PostgreSQL 12")
    clock.advance(days=10)
    r = client.post(f"{BASE}/{v1['id']}/supersede", json={"summary": "billing runs on MySQL 8"})
    assert r.status_code == 201, r.text
    v2 = r.json()
    assert v2["lineage_id"] == v1["id"] and v2["version"] == 2
    assert v2["name"] == "Billing service"  # copied from the old version
    assert parse_ts(v2["valid_from"]) == T0 + timedelta(days=10)
    old = client.get(f"{BASE}/{v1['id']}").json()
    assert parse_ts(old["valid_to"]) == T0 + timedelta(days=10)

    history = client.get(f"{BASE}/{v2['id']}/history").json()
    assert history["lineage_id"] == v1["id"]
    assert [v["id"] for v in history["versions"]] == [v1["id"], v2["id"]]
    assert client.get(f"{BASE}/{v1['id']}/history").json() == history

    # Current recall and list see only v2; "as of" day 5 sees only v1.
    now_hits = recall(client, "which database does billing use", learn=False)["hits"]
    assert [h["id"] for h in now_hits] == [v2["id"]]
    day5 = (T0 + timedelta(days=5)).isoformat()
    then = recall(client, "which database does billing use", as_of=day5, learn=False)["hits"]
    assert [h["id"] for h in then] == [v1["id"]]
    assert [e["id"] for e in client.get(BASE).json()["items"]] == [v2["id"]]
    assert [e["id"] for e in client.get(BASE, params={"as_of": day5}).json()["items"]] == [v1["id"]]
    every = client.get(BASE, params={"include_closed": True}).json()["items"]
    assert {e["id"] for e in every} == {v1["id"], v2["id"]}
    before = (T0 - timedelta(days=1)).isoformat()
    assert recall(client, "billing", as_of=before, learn=False)["hits"] == []


def test_superseding_a_closed_version_is_409(client: TestClient, clock: ManualClock) -> None:
    v1 = create(client, "x")
    clock.advance(hours=1)
    assert client.post(f"{BASE}/{v1['id']}/supersede", json={}).status_code == 201
    clock.advance(hours=1)
    assert_envelope(client.post(f"{BASE}/{v1['id']}/supersede", json={}), 409, "version_closed")


def test_supersede_must_start_after_the_old_version(client: TestClient) -> None:
    v1 = create(client, "x")
    same = client.post(f"{BASE}/{v1['id']}/supersede", json={})  # clock still at valid_from
    assert_envelope(same, 422)
    earlier = (T0 - timedelta(days=1)).isoformat()
    assert_envelope(client.post(f"{BASE}/{v1['id']}/supersede", json={"valid_from": earlier}), 422)
    assert_envelope(client.post(f"{BASE}/{uuid4()}/supersede", json={}), 404)
    later = (T0 + timedelta(days=3)).isoformat()
    r = client.post(f"{BASE}/{v1['id']}/supersede", json={"valid_from": later, "name": "y"})
    assert r.status_code == 201 and r.json()["name"] == "y"


def test_supersede_carries_relations_to_the_new_version(
    client: TestClient, clock: ManualClock
) -> None:
    a, b = create(client, "a"), create(client, "b")
    relate(client, a["id"], b["id"], 0.8)
    clock.advance(hours=1)
    a2 = client.post(f"{BASE}/{a['id']}/supersede", json={"summary": "new"}).json()
    rels = client.get(f"{BASE}/{a2['id']}/relations").json()["items"]
    assert [(r["source_id"], r["target_id"], r["weight"]) for r in rels] == [
        (a2["id"], b["id"], 0.8)
    ]
    old = client.get(f"{BASE}/{a['id']}/relations").json()["items"]
    assert [parse_ts(r["valid_to"]) for r in old] == [T0 + timedelta(hours=1)]
    spread = client.post(f"{BASE}/spread-activation", json={"seed_id": b["id"]}).json()
    assert [x["entity_id"] for x in spread["activated"]] == [a2["id"]]


# -- relations ----------------------------------------------------------------------------------
def test_relation_to_a_superseded_version_is_refused(
    client: TestClient, clock: ManualClock
) -> None:
    a, b, c = create(client, "a"), create(client, "b"), create(client, "c")
    clock.advance(hours=1)
    a2 = client.post(f"{BASE}/{a['id']}/supersede", json={"summary": "new"}).json()
    as_target = client.post(f"{BASE}/{b['id']}/relations", json={"target_id": a["id"]})
    assert_envelope(as_target, 409)
    assert as_target.json()["error"]["code"] == "version_closed"
    assert as_target.json()["error"]["message"].startswith(f"target_id {a['id']} ")
    as_source = client.post(f"{BASE}/{a['id']}/relations", json={"target_id": c["id"]})
    assert_envelope(as_source, 409)
    assert as_source.json()["error"]["message"].startswith(f"source_id {a['id']} ")
    for ident in (a["id"], b["id"], c["id"]):
        assert client.get(f"{BASE}/{ident}/relations").json()["items"] == []
    # The current version takes relations as before.
    relate(client, b["id"], a2["id"], 0.5)


def test_relations_create_list_delete_and_errors(client: TestClient) -> None:
    a, b = create(client, "a"), create(client, "b")
    rel = relate(client, a["id"], b["id"], 0.9)
    assert rel["source_id"] == a["id"] and rel["relation_type"] == "USES"
    for ident in (a["id"], b["id"]):
        assert client.get(f"{BASE}/{ident}/relations").json()["items"] == [rel]
    dup = client.post(
        f"{BASE}/{a['id']}/relations", json={"target_id": b["id"], "relation_type": "USES"}
    )
    assert_envelope(dup, 409, "conflict")
    self_rel = client.post(f"{BASE}/{a['id']}/relations", json={"target_id": a["id"]})
    assert_envelope(self_rel, 422)
    missing = client.post(f"{BASE}/{a['id']}/relations", json={"target_id": str(uuid4())})
    assert_envelope(missing, 404)
    assert_envelope(
        client.post(f"{BASE}/{a['id']}/relations", json={"target_id": b["id"], "weight": 1.5}), 422
    )
    assert_envelope(client.get(f"{BASE}/{uuid4()}/relations"), 404)
    assert_envelope(client.delete(f"{BASE}/{uuid4()}/relations/{rel['id']}"), 404)
    assert client.delete(f"{BASE}/{b['id']}/relations/{rel['id']}").status_code == 204
    assert_envelope(client.delete(f"{BASE}/{a['id']}/relations/{rel['id']}"), 404)
    assert client.get(f"{BASE}/{a['id']}/relations").json()["items"] == []


# -- spreading activation -----------------------------------------------------------------------
def _chain(client: TestClient) -> dict[str, str]:
    names = {n: create(client, n)["id"] for n in "ABCD"}
    relate(client, names["A"], names["B"], 0.9)
    relate(client, names["C"], names["B"], 0.5)  # direction does not matter for spreading
    relate(client, names["A"], names["C"], 0.2)
    relate(client, names["C"], names["D"], 1.0)
    return names


def test_spread_activation_values_and_paths(client: TestClient) -> None:
    ids = _chain(client)
    body = {"seed_id": ids["A"], "depth": 3, "threshold": 0.0, "decay": 0.8}
    r = client.post(f"{BASE}/spread-activation", json=body)
    assert r.status_code == 200, r.text
    got = {x["entity"]["name"]: x for x in r.json()["activated"]}
    assert set(got) == {"B", "C", "D"}
    assert got["B"]["activation"] == pytest.approx(0.72)
    assert got["B"]["path"] == [ids["A"], ids["B"]]
    # A->B->C (0.72 * 0.5 * 0.8 = 0.288) beats the direct A->C (0.2 * 0.8 = 0.16).
    assert got["C"]["activation"] == pytest.approx(0.288)
    assert got["C"]["path"] == [ids["A"], ids["B"], ids["C"]] and got["C"]["depth"] == 2
    assert got["D"]["activation"] == pytest.approx(0.2304)
    assert got["D"]["path"] == [ids["A"], ids["B"], ids["C"], ids["D"]]
    assert [x["entity"]["name"] for x in r.json()["activated"]] == ["B", "C", "D"]


def test_spread_activation_depth_and_threshold(client: TestClient) -> None:
    ids = _chain(client)
    one = client.post(
        f"{BASE}/spread-activation", json={"seed_id": ids["A"], "depth": 1, "threshold": 0.0}
    ).json()["activated"]
    assert {x["entity"]["name"]: round(x["activation"], 6) for x in one} == {
        "B": 0.72,
        "C": 0.16,
    }
    strict = client.post(
        f"{BASE}/spread-activation", json={"seed_id": ids["A"], "depth": 5, "threshold": 0.25}
    ).json()["activated"]
    assert [x["entity"]["name"] for x in strict] == ["B", "C"]


@pytest.mark.parametrize(
    "extra", [{"depth": 0}, {"depth": 6}, {"threshold": -0.1}, {"threshold": 2}, {"decay": 0}]
)
def test_spread_activation_bad_parameters_are_422(
    client: TestClient, extra: dict[str, Any]
) -> None:
    seed = create(client, "s")["id"]
    r = client.post(f"{BASE}/spread-activation", json={"seed_id": seed, **extra})
    assert_envelope(r, 422)


def test_spread_activation_unknown_seed_is_404(client: TestClient) -> None:
    assert_envelope(client.post(f"{BASE}/spread-activation", json={"seed_id": str(uuid4())}), 404)


# -- recall -------------------------------------------------------------------------------------
def test_recall_fuses_features_with_score_parts(client: TestClient) -> None:
    py = create(client, "Python", entity_type="TOOL", summary="a programming language")
    fa = create(client, "FastAPI", entity_type="TOOL", summary="web framework")
    create(client, "Ana", entity_type="PERSON", summary="likes hiking in the alps")
    relate(client, fa["id"], py["id"], 0.9)
    result = recall(client, "programming language", learn=False)
    hits = result["hits"]
    assert hits[0]["id"] == py["id"] and result["degraded"] is False
    parts = hits[0]["score_parts"]
    assert set(parts) == {"semantic", "keyword", "base_level", "retrievability", "spread"}
    assert parts["keyword"] == 1.0 and parts["semantic"] > 0.5
    # Created at the clock's now: one access under a second ago -> B = 0 -> P = 1 / (1 + e^-5).
    assert parts["base_level"] == pytest.approx(1 / (1 + math.exp(-5)))
    assert parts["retrievability"] == pytest.approx(1.0)
    by_id = {h["id"]: h for h in hits}
    # FastAPI is one hop (0.9) from the best seed: 0.9 * 0.8.
    assert by_id[fa["id"]]["score_parts"]["spread"] == pytest.approx(0.72)
    expected = (
        0.55 * parts["semantic"]
        + 0.20 * parts["keyword"]
        + 0.10 * parts["base_level"]
        + 0.05 * parts["retrievability"]
        + 0.10 * parts["spread"]
    )
    assert hits[0]["score"] == pytest.approx(expected)
    people = recall(client, "programming language", entity_type="PERSON", learn=False)["hits"]
    assert {h["entity"]["entity_type"] for h in people} == {"PERSON"}


def test_recall_learn_records_access_and_false_is_read_only(
    client: TestClient, clock: ManualClock
) -> None:
    e = create(client, "Kelp", summary="seaweed forest")
    clock.advance(hours=1)
    first = recall(client, "seaweed", learn=False)["hits"][0]
    assert client.get(f"{BASE}/{e['id']}").json()["access_count"] == 0
    recall(client, "seaweed")
    got = client.get(f"{BASE}/{e['id']}").json()
    assert got["access_count"] == 1 and got["fsrs"]["reps"] == 1
    again = recall(client, "seaweed", learn=False)["hits"][0]
    # A second recorded access raises the base level: ln(3600^-0.5 + 1^-0.5) > ln(3600^-0.5).
    assert again["score_parts"]["base_level"] > first["score_parts"]["base_level"]


def test_recall_empty_and_invalid(client: TestClient) -> None:
    assert recall(client, "anything")["hits"] == []
    assert_envelope(client.post(f"{BASE}/recall", json={"query": ""}), 422)
    assert_envelope(client.post(f"{BASE}/recall", json={"query": "x", "limit": 0}), 422)
    assert_envelope(client.post(f"{BASE}/recall", json={"query": "x", "as_of": "nope"}), 422)


# -- isolation ----------------------------------------------------------------------------------
def test_other_sessions_ids_are_not_found(client: TestClient) -> None:
    a, b = create(client, "secret a"), create(client, "secret b")
    rel = relate(client, a["id"], b["id"], 0.5)
    other = {"X-Session-ID": new_session_id("intruder")}
    for method, path, body in [
        ("GET", f"{BASE}/{a['id']}", None),
        ("PATCH", f"{BASE}/{a['id']}", {"name": "z"}),
        ("DELETE", f"{BASE}/{a['id']}", None),
        ("POST", f"{BASE}/{a['id']}/supersede", {}),
        ("GET", f"{BASE}/{a['id']}/history", None),
        ("GET", f"{BASE}/{a['id']}/relations", None),
        ("POST", f"{BASE}/{a['id']}/relations", {"target_id": b["id"]}),
        ("DELETE", f"{BASE}/{a['id']}/relations/{rel['id']}", None),
        ("POST", f"{BASE}/spread-activation", {"seed_id": a["id"]}),
    ]:
        r = client.request(method, path, json=body, headers=other)
        assert_envelope(r, 404)
    assert client.get(BASE, headers=other).json()["items"] == []
    assert (
        client.post(f"{BASE}/recall", json={"query": "secret"}, headers=other).json()["hits"] == []
    )
    # Nothing changed for the owner.
    assert client.get(f"{BASE}/{a['id']}").json()["name"] == "secret a"
    assert len(client.get(f"{BASE}/{a['id']}/relations").json()["items"]) == 1


def test_deleting_the_session_deletes_its_entities(client: TestClient, session: str) -> None:
    a = create(client, "a")
    assert client.delete(f"/api/v1/sessions/{session}").status_code == 200
    assert_envelope(client.get(f"{BASE}/{a['id']}"), 404)
    assert recall(client, "a is a thing")["hits"] == []


# -- persistence --------------------------------------------------------------------------------
def test_entities_relations_and_access_times_survive_a_restart(
    onnx_embedder: OnnxEmbedder, tmp_path: Path
) -> None:
    clock = ManualClock()
    headers = {"X-Session-ID": "persist"}
    data = tmp_path / "data"
    with running_client(data, onnx_embedder, clock) as c:
        c.headers.update(headers)
        a, b = create(c, "Glacier", summary="slow river of ice"), create(c, "Fjord")
        rel = relate(c, a["id"], b["id"], 0.6)
        clock.advance(hours=1)
        assert recall(c, "river of ice")["hits"][0]["id"] == a["id"]  # access at T0 + 1h
        clock.advance(hours=1)
        c.post(f"{BASE}/{b['id']}/supersede", json={"summary": "a narrow sea inlet"})
    clock.advance(hours=1)  # T0 + 3h
    with running_client(data, onnx_embedder, clock) as c:
        c.headers.update(headers)
        got = c.get(f"{BASE}/{a['id']}").json()
        assert got["access_count"] == 1 and got["index_state"] == "indexed"
        hit = recall(c, "river of ice", learn=False)["hits"][0]
        assert hit["id"] == a["id"]
        # Accesses at T0 (creation) and T0 + 1h, seen from T0 + 3h.
        b_level = math.log((3 * 3600) ** -0.5 + (2 * 3600) ** -0.5)
        assert hit["score_parts"]["base_level"] == pytest.approx(1 / (1 + math.exp(-(b_level + 5))))
        history = c.get(f"{BASE}/{b['id']}/history").json()["versions"]
        assert [v["version"] for v in history] == [1, 2]
        rels = {r["id"]: r for r in c.get(f"{BASE}/{a['id']}/relations").json()["items"]}
        # The original relation, closed when b was superseded, and its copy to b's v2.
        assert parse_ts(rels[rel["id"]]["valid_to"]) == T0 + timedelta(hours=2)
        assert {r["target_id"] for r in rels.values()} == {b["id"], history[1]["id"]}
        spread = c.post(f"{BASE}/spread-activation", json={"seed_id": a["id"]}).json()
        assert [x["entity_id"] for x in spread["activated"]] == [history[1]["id"]]
