"""The ``/api/v1/episodes`` endpoints, end to end through HTTP, on SQLite records with each
vector backend (Qdrant Edge, and the Qdrant server backend through qdrant-client local mode).

One app serves the module; every test acts in a session of its own (see ``helpers``).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.api.helpers import (
    assert_envelope,
    new_session_id,
    parse_ts,
    running_client,
    scratch_dir,
)
from tests.conftest import ManualClock
from tests.factories import T0
from ww.embedding import OnnxEmbedder

BASE = "/api/v1/episodes"

_CLOCK = ManualClock()


# Every test runs on Qdrant Edge and on the Qdrant server backend (qdrant-client local mode).
@pytest.fixture(scope="module", params=["qdrant_edge", "qdrant_local"])
def shared_client(
    request: pytest.FixtureRequest, onnx_embedder: OnnxEmbedder
) -> Iterator[TestClient]:
    with (
        scratch_dir() as tmp,
        running_client(tmp / "data", onnx_embedder, _CLOCK, vectors=request.param) as c,
    ):
        yield c


@pytest.fixture
def clock() -> ManualClock:
    _CLOCK.now = T0
    return _CLOCK


@pytest.fixture
def session() -> str:
    return new_session_id("ep")


@pytest.fixture
def client(shared_client: TestClient, clock: ManualClock, session: str) -> Iterator[TestClient]:
    shared_client.headers["X-Session-ID"] = session
    yield shared_client
    del shared_client.headers["X-Session-ID"]


def iso(value: datetime) -> str:
    return value.isoformat()


def create(client: TestClient, **body: Any) -> dict[str, Any]:
    body.setdefault("content", "a note about the build")
    r = client.post(BASE, json=body)
    assert r.status_code == 201, r.text
    return r.json()


def batch(client: TestClient, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    r = client.post(f"{BASE}/batch", json={"episodes": items})
    assert r.status_code == 201, r.text
    data = r.json()
    assert data["count"] == len(items)
    return data["episodes"]


def list_ids(client: TestClient, **params: Any) -> list[str]:
    params.setdefault("limit", 200)
    r = client.get(BASE, params=params)
    assert r.status_code == 200, r.text
    return [item["id"] for item in r.json()["items"]]


def recall(client: TestClient, query: str, **body: Any) -> dict[str, Any]:
    r = client.post(f"{BASE}/recall", json={"query": query, **body})
    assert r.status_code == 200, r.text
    return r.json()


# -- create -----------------------------------------------------------------------------------


def test_create_echoes_fields_and_defaults(client: TestClient, session: str) -> None:
    ep = create(
        client,
        content="Deployed the billing service to staging",
        speaker="agent-7",
        source="cli",
        context={"project": "billing", "file": "deploy.sh", "extra": {"attempt": 2}},
        metadata={"ticket": "OPS-12", "priority": 3, "urgent": True, "ratio": 0.5, "x": None},
        external_id="ext-001",
        outcome="success",
        importance=0.8,
    )
    assert ep["content"] == "Deployed the billing service to staging"
    assert ep["speaker"] == "agent-7"
    assert ep["source"] == "cli"
    assert ep["context"]["project"] == "billing"
    assert ep["context"]["file"] == "deploy.sh"
    assert ep["context"]["extra"] == {"attempt": 2}
    assert ep["metadata"] == {
        "ticket": "OPS-12",
        "priority": 3,
        "urgent": True,
        "ratio": 0.5,
        "x": None,
    }
    assert ep["external_id"] == "ext-001"
    assert ep["outcome"] == "success"
    assert ep["importance"] == pytest.approx(0.8)
    assert ep["session_id"] == session
    assert ep["access_count"] == 0
    assert ep["last_accessed"] is None
    assert ep["archived"] is False
    assert ep["index_state"] == "indexed"
    # No timestamp given: the injected clock supplies it.
    assert parse_ts(ep["timestamp"]) == T0
    assert parse_ts(ep["ingested_at"]) == T0
    assert parse_ts(ep["fsrs"]["last_review"]) == T0
    # What the create returned is what a later GET returns.
    got = client.get(f"{BASE}/{ep['id']}")
    assert got.status_code == 200
    assert got.json() == ep


def test_create_minimal_defaults(client: TestClient) -> None:
    ep = create(client, content="x")
    assert ep["outcome"] == "neutral"
    assert ep["importance"] == pytest.approx(0.5)
    assert ep["metadata"] == {}
    assert ep["external_id"] is None
    assert ep["speaker"] is None


def test_create_timestamp_set_by_caller_is_returned_in_utc(client: TestClient) -> None:
    ep = create(client, content="late night incident", timestamp="2025-06-01T12:30:00+02:00")
    ts = parse_ts(ep["timestamp"])
    assert ts.utcoffset() == timedelta(0)
    assert ts == datetime(2025, 6, 1, 10, 30, tzinfo=UTC)
    # A naive timestamp is taken as UTC.
    ep2 = create(client, content="naive time", timestamp="2025-06-01T08:00:00")
    assert parse_ts(ep2["timestamp"]) == datetime(2025, 6, 1, 8, 0, tzinfo=UTC)
    # Microseconds survive the round trip through storage.
    ep3 = create(client, content="precise", timestamp="2025-06-01T08:00:00.123456Z")
    got = client.get(f"{BASE}/{ep3['id']}").json()
    assert parse_ts(got["timestamp"]) == datetime(2025, 6, 1, 8, 0, 0, 123456, tzinfo=UTC)


def test_create_rejects_invalid_bodies(client: TestClient) -> None:
    assert_envelope(client.post(BASE, json={"content": ""}), 422, "validation_error")
    assert_envelope(client.post(BASE, json={}), 422, "validation_error")
    assert_envelope(client.post(BASE, json={"content": "x", "importance": 1.5}), 422)
    assert_envelope(client.post(BASE, json={"content": "x", "outcome": "great"}), 422)
    assert_envelope(client.post(BASE, json={"content": "x", "metadata": {"bad key": 1}}), 422)
    # Nothing was stored by any of these.
    assert list_ids(client) == []


# -- batch ------------------------------------------------------------------------------------


def test_batch_create_returns_all_in_order(client: TestClient) -> None:
    items = [{"content": f"step {i} of the migration", "external_id": f"m-{i}"} for i in range(5)]
    eps = batch(client, items)
    assert [e["external_id"] for e in eps] == [f"m-{i}" for i in range(5)]
    assert len({e["id"] for e in eps}) == 5
    assert sorted(list_ids(client)) == sorted(e["id"] for e in eps)


def test_batch_create_accepts_1000(client: TestClient, session: str) -> None:
    # Ten distinct texts so the embedder cache keeps this fast.
    items = [{"content": f"bulk item {i % 10}", "external_id": str(i)} for i in range(1000)]
    eps = batch(client, items)
    assert len(eps) == 1000
    stats = client.get(f"/api/v1/sessions/{session}").json()
    assert stats["episodes"] == 1000
    assert len(list_ids(client)) == 200


def test_batch_over_1000_or_empty_is_422(client: TestClient) -> None:
    too_many = [{"content": "x"} for _ in range(1001)]
    assert_envelope(
        client.post(f"{BASE}/batch", json={"episodes": too_many}), 422, "validation_error"
    )
    assert_envelope(client.post(f"{BASE}/batch", json={"episodes": []}), 422, "validation_error")
    # One bad item refuses the whole batch.
    mixed = [{"content": "fine"}, {"content": ""}]
    assert_envelope(client.post(f"{BASE}/batch", json={"episodes": mixed}), 422)
    assert list_ids(client) == []


# -- get / delete -----------------------------------------------------------------------------


def test_get_unknown_is_404(client: TestClient) -> None:
    r = client.get(f"{BASE}/00000000-0000-4000-8000-000000000000")
    err = assert_envelope(r, 404, "not_found")
    assert "not found" in err["message"]


def test_delete_then_404(client: TestClient) -> None:
    ep = create(client, content="temporary thought")
    keep = create(client, content="keeper")
    r = client.delete(f"{BASE}/{ep['id']}")
    assert r.status_code == 204
    assert r.content == b""
    assert_envelope(client.get(f"{BASE}/{ep['id']}"), 404, "not_found")
    assert_envelope(client.delete(f"{BASE}/{ep['id']}"), 404, "not_found")
    assert_envelope(client.patch(f"{BASE}/{ep['id']}", json={"content": "y"}), 404)
    assert_envelope(client.post(f"{BASE}/{ep['id']}/mark-important"), 404)
    assert list_ids(client) == [keep["id"]]
    hits = recall(client, "temporary thought", learn=False)["hits"]
    assert ep["id"] not in [h["id"] for h in hits]


# -- list and filters -------------------------------------------------------------------------


@pytest.fixture
def corpus(client: TestClient) -> dict[str, str]:
    """Six episodes spread over time, outcomes, projects, speakers and metadata."""
    specs = {
        "a": {
            "content": "compiled the parser",
            "timestamp": iso(T0 - timedelta(days=5)),
            "outcome": "success",
            "speaker": "alice",
            "context": {"project": "parser"},
            "metadata": {"lang": "rust", "level": 1, "flag": True},
        },
        "b": {
            "content": "parser tests failed",
            "timestamp": iso(T0 - timedelta(days=4)),
            "outcome": "failure",
            "speaker": "bob",
            "context": {"project": "parser"},
            "metadata": {"lang": "rust", "level": 2, "flag": False},
        },
        "c": {
            "content": "wrote the web frontend",
            "timestamp": iso(T0 - timedelta(days=3)),
            "outcome": "success",
            "speaker": "alice",
            "context": {"project": "web"},
            "metadata": {"lang": "ts", "level": 1},
        },
        "d": {
            "content": "frontend build partially broke",
            "timestamp": iso(T0 - timedelta(days=2)),
            "outcome": "partial",
            "speaker": "carol",
            "context": {"project": "web"},
            "metadata": {"lang": "ts", "level": "1"},
        },
        "e": {
            "content": "lunch break",
            "timestamp": iso(T0 - timedelta(days=1)),
            "speaker": "bob",
            "metadata": {"flag": True},
        },
        "f": {
            "content": "planning meeting about the parser",
            "timestamp": iso(T0),
            "outcome": "neutral",
            "speaker": "alice",
            "context": {"project": "parser"},
            "metadata": {"level": 1},
        },
    }
    eps = batch(client, list(specs.values()))
    return {key: ep["id"] for key, ep in zip(specs, eps, strict=True)}


def _keys(ids: dict[str, str], got: list[str]) -> list[str]:
    back = {v: k for k, v in ids.items()}
    return [back[i] for i in got]


def test_list_is_newest_first(client: TestClient, corpus: dict[str, str]) -> None:
    assert _keys(corpus, list_ids(client)) == ["f", "e", "d", "c", "b", "a"]


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"time_from": iso(T0 - timedelta(days=3))}, ["f", "e", "d", "c"]),
        ({"time_to": iso(T0 - timedelta(days=3))}, ["b", "a"]),  # time_to is exclusive
        (
            {"time_from": iso(T0 - timedelta(days=4)), "time_to": iso(T0 - timedelta(days=1))},
            ["d", "c", "b"],
        ),
        ({"outcome": "success"}, ["c", "a"]),
        ({"outcome": "neutral"}, ["f", "e"]),
        ({"project": "parser"}, ["f", "b", "a"]),
        ({"project": "web", "outcome": "partial"}, ["d"]),
        ({"speaker": "alice"}, ["f", "c", "a"]),
        ({"speaker": "nobody"}, []),
        ({"metadata": json.dumps({"lang": "rust"})}, ["b", "a"]),
        ({"metadata": json.dumps({"lang": "rust", "level": 2})}, ["b"]),
        # Exact and typed: the int 1 does not match the string "1", nor True.
        ({"metadata": json.dumps({"level": 1})}, ["f", "c", "a"]),
        ({"metadata": json.dumps({"level": "1"})}, ["d"]),
        ({"metadata": json.dumps({"flag": True})}, ["e", "a"]),
        ({"metadata": json.dumps({"flag": False})}, ["b"]),
        ({"metadata": json.dumps({"missing": "x"})}, []),
        ({"metadata": "{}"}, ["f", "e", "d", "c", "b", "a"]),
    ],
)
def test_list_filters(
    client: TestClient, corpus: dict[str, str], params: dict[str, str], expected: list[str]
) -> None:
    assert _keys(corpus, list_ids(client, **params)) == expected


@pytest.mark.parametrize(
    "metadata",
    ["{not json", "[1, 2]", '"text"', '{"bad key": 1}', '{"k": 1.5}', '{"k": [1]}'],
)
def test_list_invalid_metadata_filter_is_400(client: TestClient, metadata: str) -> None:
    err = assert_envelope(client.get(BASE, params={"metadata": metadata}), 400, "bad_request")
    assert "filter" in err["message"]


def test_list_invalid_query_params_are_422(client: TestClient) -> None:
    assert_envelope(client.get(BASE, params={"outcome": "great"}), 422, "validation_error")
    assert_envelope(client.get(BASE, params={"limit": 0}), 422)
    assert_envelope(client.get(BASE, params={"limit": 201}), 422)
    assert_envelope(client.get(BASE, params={"time_from": "yesterday"}), 422)


def test_cursor_pagination_walks_every_item_once_newest_first(client: TestClient) -> None:
    # 23 episodes; several share a timestamp so the id tie-break matters.
    items = [
        {"content": f"event {i % 5}", "timestamp": iso(T0 + timedelta(minutes=i // 3))}
        for i in range(23)
    ]
    created = batch(client, items)
    expected = [
        e["id"]
        for e in sorted(created, key=lambda e: (parse_ts(e["timestamp"]), e["id"]), reverse=True)
    ]
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        params: dict[str, Any] = {"limit": 5}
        if cursor is not None:
            params["cursor"] = cursor
        r = client.get(BASE, params=params)
        assert r.status_code == 200, r.text
        page = r.json()
        assert len(page["items"]) <= 5
        seen += [item["id"] for item in page["items"]]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
        assert pages < 10, "pagination does not terminate"
    assert pages == 5
    assert seen == expected
    assert len(set(seen)) == 23


def test_cursor_pagination_respects_filters(client: TestClient) -> None:
    items = [
        {
            "content": f"task {i}",
            "timestamp": iso(T0 + timedelta(minutes=i)),
            "outcome": "success" if i % 2 else "failure",
        }
        for i in range(10)
    ]
    created = batch(client, items)
    successes = [e["id"] for e in reversed(created) if e["outcome"] == "success"]
    r1 = client.get(BASE, params={"outcome": "success", "limit": 3}).json()
    r2 = client.get(
        BASE, params={"outcome": "success", "limit": 3, "cursor": r1["next_cursor"]}
    ).json()
    assert [i["id"] for i in r1["items"] + r2["items"]] == successes
    assert r2["next_cursor"] is None


@pytest.mark.parametrize(
    "cursor",
    [
        "not-a-cursor",
        "!!!",
        "eyJmb28iOiAxfQ",  # base64 of {"foo": 1}
        "WzEsIDJd",  # base64 of [1, 2]: not a uuid
        "WyJ4IiwgImIxYjk4ZjkwLTg4NjktNDQ1Yy1hNTkzLTcwNzVlNjg3N2E1MyJd",  # ["x", uuid]
    ],
)
def test_invalid_cursor_is_400(client: TestClient, cursor: str) -> None:
    create(client)
    assert_envelope(client.get(BASE, params={"cursor": cursor}), 400, "invalid_cursor")


@pytest.mark.parametrize(
    "payload",
    [
        '[1e999, "b1b98f90-8869-445c-a593-7075e6877a53"]',  # int(inf): OverflowError
        '[100000000000000000000000000000, "b1b98f90-8869-445c-a593-7075e6877a53"]',
    ],
)
def test_cursor_with_out_of_range_timestamp_is_400(client: TestClient, payload: str) -> None:
    """A cursor is caller input: out-of-range numbers must be refused, never a 500."""
    cursor = base64.urlsafe_b64encode(payload.encode()).decode().rstrip("=")
    create(client)
    assert_envelope(client.get(BASE, params={"cursor": cursor}), 400, "invalid_cursor")


# Aware datetimes whose UTC equivalent falls outside years 1-9999 cannot be represented.
OUT_OF_RANGE_TIMES = ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"]


@pytest.mark.parametrize("when", OUT_OF_RANGE_TIMES)
def test_datetime_out_of_range_in_utc_is_422(client: TestClient, when: str) -> None:
    """Caller input that cannot be converted to UTC is a validation error, never a 500."""
    ep = create(client, content="a fixed point")
    assert_envelope(client.post(BASE, json={"content": "x", "timestamp": when}), 422)
    assert_envelope(client.patch(f"{BASE}/{ep['id']}", json={"timestamp": when}), 422)
    assert_envelope(client.get(BASE, params={"time_from": when}), 422)
    body = {"query": "fixed point", "filters": {"time_to": when}}
    assert_envelope(client.post(f"{BASE}/recall", json=body), 422)
    assert list_ids(client) == [ep["id"]]


def test_extreme_utc_datetimes_round_trip(client: TestClient) -> None:
    first = create(client, content="the first moment", timestamp="0001-01-01T00:00:00Z")
    last = create(client, content="the last moment", timestamp="9999-12-31T23:59:59.999999Z")
    assert list_ids(client) == [last["id"], first["id"]]
    assert list_ids(client, time_from="5000-01-01T00:00:00Z") == [last["id"]]
    assert list_ids(client, time_to="0001-01-01T00:00:01Z") == [first["id"]]
    got = client.get(f"{BASE}/{last['id']}").json()
    assert parse_ts(got["timestamp"]) == datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)


# -- update -----------------------------------------------------------------------------------


def test_patch_changes_only_given_fields(client: TestClient) -> None:
    ep = create(client, content="original", speaker="alice", metadata={"k": "v"}, importance=0.3)
    r = client.patch(f"{BASE}/{ep['id']}", json={"speaker": "bob", "outcome": "failure"})
    assert r.status_code == 200, r.text
    got = r.json()
    assert got["speaker"] == "bob"
    assert got["outcome"] == "failure"
    assert got["content"] == "original"
    assert got["metadata"] == {"k": "v"}
    assert got["importance"] == pytest.approx(0.3)
    assert client.get(f"{BASE}/{ep['id']}").json() == got
    assert_envelope(client.patch(f"{BASE}/{ep['id']}", json={"bogus": 1}), 422)
    assert_envelope(client.patch(f"{BASE}/{ep['id']}", json={"importance": -1}), 422)


@pytest.mark.parametrize(
    "field", ["content", "timestamp", "context", "metadata", "outcome", "importance", "archived"]
)
def test_patch_null_for_a_required_field_is_not_a_server_error(
    client: TestClient, field: str
) -> None:
    """The schema lets every PATCH field be null; for fields an episode must have, null can
    only mean "leave it" (as for content) or be refused with 422, never a 500."""
    ep = create(
        client,
        content="a stable fact",
        context={"project": "p"},
        metadata={"k": "v"},
        outcome="success",
        importance=0.7,
    )
    r = client.patch(f"{BASE}/{ep['id']}", json={field: None})
    assert r.status_code in (200, 422), r.text
    if r.status_code == 422:
        assert_envelope(r, 422, "validation_error")
    got = client.get(f"{BASE}/{ep['id']}").json()
    assert got[field] == ep[field]


def test_patch_null_clears_optional_fields(client: TestClient) -> None:
    ep = create(client, content="fact", speaker="alice", source="cli", external_id="e-1")
    r = client.patch(f"{BASE}/{ep['id']}", json={"speaker": None, "external_id": None})
    assert r.status_code == 200, r.text
    assert r.json()["speaker"] is None
    assert r.json()["external_id"] is None
    assert r.json()["source"] == "cli"


def test_patch_content_is_reflected_in_recall(client: TestClient) -> None:
    ep = create(client, content="the quarterly budget spreadsheet")
    create(client, content="walking the dog in the park")
    before = recall(client, "kubernetes cluster autoscaler", learn=False)["hits"]
    kw_before = {h["id"]: h["score_parts"]["keyword"] for h in before}
    assert kw_before.get(ep["id"], 0.0) == 0.0

    r = client.patch(f"{BASE}/{ep['id']}", json={"content": "the kubernetes cluster autoscaler"})
    assert r.status_code == 200
    assert r.json()["content"] == "the kubernetes cluster autoscaler"
    assert r.json()["index_state"] == "indexed"

    hits = recall(client, "kubernetes cluster autoscaler", learn=False)["hits"]
    assert hits[0]["id"] == ep["id"]
    assert hits[0]["score_parts"]["keyword"] == pytest.approx(1.0)
    assert hits[0]["score_parts"]["semantic"] > 0.8
    assert hits[0]["episode"]["content"] == "the kubernetes cluster autoscaler"
    # The old words no longer find it by keyword.
    old = recall(client, "quarterly budget spreadsheet", learn=False)["hits"]
    assert {h["id"]: h["score_parts"]["keyword"] for h in old}.get(ep["id"], 0.0) == 0.0


def test_patch_metadata_is_reflected_in_filters(client: TestClient) -> None:
    ep = create(client, content="an experiment with caching", metadata={"stage": "draft"})
    draft = json.dumps({"stage": "draft"})
    final = json.dumps({"stage": "final"})
    assert list_ids(client, metadata=draft) == [ep["id"]]
    r = client.patch(f"{BASE}/{ep['id']}", json={"metadata": {"stage": "final"}})
    assert r.status_code == 200
    assert list_ids(client, metadata=draft) == []
    assert list_ids(client, metadata=final) == [ep["id"]]
    # Recall filters run in the vector index too: the payload must follow the record.
    hits = recall(
        client, "experiment with caching", learn=False, filters={"metadata": {"stage": "final"}}
    )
    assert [h["id"] for h in hits["hits"]] == [ep["id"]]
    hits = recall(
        client, "experiment with caching", learn=False, filters={"metadata": {"stage": "draft"}}
    )
    assert hits["hits"] == []


def test_patch_outcome_and_project_reflected_in_recall_filters(client: TestClient) -> None:
    ep = create(client, content="refactored the login flow", context={"project": "auth"})
    r = client.patch(
        f"{BASE}/{ep['id']}", json={"outcome": "failure", "context": {"project": "sso"}}
    )
    assert r.status_code == 200
    flt = {"outcome": "failure", "project": "sso"}
    hits = recall(client, "login flow", learn=False, filters=flt)["hits"]
    assert [h["id"] for h in hits] == [ep["id"]]
    assert recall(client, "login flow", learn=False, filters={"project": "auth"})["hits"] == []


# -- mark important ---------------------------------------------------------------------------


def test_mark_important_raises_importance_and_stability(
    client: TestClient, clock: ManualClock
) -> None:
    ep = create(client, content="the root password rotates monthly", importance=0.2)
    clock.advance(days=1)
    r = client.post(f"{BASE}/{ep['id']}/mark-important", json={"importance": 0.9})
    assert r.status_code == 200, r.text
    got = r.json()
    assert got["importance"] == pytest.approx(0.9)
    assert got["fsrs"]["stability"] > ep["fsrs"]["stability"]
    assert got["fsrs"]["reps"] == ep["fsrs"]["reps"] + 1
    assert parse_ts(got["fsrs"]["last_review"]) == T0 + timedelta(days=1)
    assert client.get(f"{BASE}/{ep['id']}").json() == got


def test_mark_important_default_body_and_never_lowers(client: TestClient) -> None:
    ep = create(client, content="remember this", importance=0.6)
    got = client.post(f"{BASE}/{ep['id']}/mark-important").json()
    assert got["importance"] == pytest.approx(1.0)
    assert got["fsrs"]["stability"] > ep["fsrs"]["stability"]
    lower = client.post(f"{BASE}/{ep['id']}/mark-important", json={"importance": 0.1})
    assert lower.status_code == 200
    assert lower.json()["importance"] == pytest.approx(1.0)
    assert_envelope(client.post(f"{BASE}/{ep['id']}/mark-important", json={"importance": 2}), 422)


# -- recall -----------------------------------------------------------------------------------


def test_recall_hit_shape(client: TestClient) -> None:
    ep = create(client, content="the database migration ran for two hours", external_id="mig-7")
    create(client, content="a cat sat on the mat")
    res = recall(client, "database migration duration", learn=False)
    assert set(res) >= {"recall_id", "query", "hits", "degraded"}
    assert res["query"] == "database migration duration"
    assert res["degraded"] is False
    assert len(res["recall_id"]) == 36
    top = res["hits"][0]
    assert top["id"] == ep["id"]
    assert top["external_id"] == "mig-7"
    assert top["memory_type"] == "episode"
    assert top["episode"]["id"] == ep["id"]
    parts = top["score_parts"]
    assert set(parts) >= {"semantic", "keyword", "retrievability", "recency", "importance"}
    for value in parts.values():
        assert 0.0 <= value <= 1.0
    assert parts["importance"] == pytest.approx(0.5)
    # Retrievability ranks only with WW_FLAG_FSRS=true (off by default, docs/benchmarks.md);
    # its decay is tested in tests/engine/test_engine.py with the flag on.
    assert parts["retrievability"] == 0.0
    assert parts["recency"] == pytest.approx(1.0)
    scores = [h["score"] for h in res["hits"]]
    assert scores == sorted(scores, reverse=True)
    # A second recall gets a fresh recall id.
    assert (
        recall(client, "database migration duration", learn=False)["recall_id"] != res["recall_id"]
    )


def test_recall_limit(client: TestClient) -> None:
    batch(client, [{"content": f"note number {i}"} for i in range(8)])
    assert len(recall(client, "note", limit=3, learn=False)["hits"]) == 3
    assert_envelope(client.post(f"{BASE}/recall", json={"query": "x", "limit": 0}), 422)
    assert_envelope(client.post(f"{BASE}/recall", json={"query": ""}), 422)
    assert_envelope(client.post(f"{BASE}/recall", json={"query": "x", "bogus": 1}), 422)


def test_recall_empty_store_has_no_hits(client: TestClient) -> None:
    res = recall(client, "anything at all")
    assert res["hits"] == []


def test_recall_finds_rare_keyword(client: TestClient) -> None:
    """Hybrid: a made-up product code shares no meaning with anything, only the token."""
    target = create(client, content="Customer reported the ZX-4471 unit overheating")
    batch(
        client,
        [
            {"content": "Customer reported the router overheating"},
            {"content": "The unit tests overheated the build machine"},
            {"content": "A customer called about a noisy fan"},
            {"content": "Product codes are printed on the box"},
        ],
    )
    hits = recall(client, "ZX-4471", learn=False, limit=3)["hits"]
    assert hits[0]["id"] == target["id"]
    assert hits[0]["score_parts"]["keyword"] == pytest.approx(1.0)
    for other in hits[1:]:
        assert other["score_parts"]["keyword"] == 0.0
    # Keyword preset too.
    hits = recall(client, "ZX-4471", learn=False, preset="keyword", limit=1)["hits"]
    assert hits[0]["id"] == target["id"]


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ({"outcome": "success"}, {"a", "c"}),
        ({"project": "parser"}, {"a", "b", "f"}),
        ({"speaker": "bob"}, {"b", "e"}),
        ({"metadata": {"lang": "ts"}}, {"c", "d"}),
        ({"metadata": {"flag": True}}, {"a", "e"}),
        ({"time_from": iso(T0 - timedelta(days=2))}, {"d", "e", "f"}),
        ({"time_to": iso(T0 - timedelta(days=4))}, {"a"}),
        ({"project": "web", "outcome": "success"}, {"c"}),
    ],
)
def test_recall_with_filters_returns_only_matches(
    client: TestClient,
    corpus: dict[str, str],
    filters: dict[str, Any],
    expected: set[str],
) -> None:
    # The query matches every episode by keyword or meaning; filters must cut it down.
    query = "parser frontend build lunch planning tests web"
    hits = recall(client, query, learn=False, limit=100, filters=filters)["hits"]
    assert set(_keys(corpus, [h["id"] for h in hits])) == expected


def test_recall_invalid_filters_are_422(client: TestClient) -> None:
    for flt in ({"metadata": {"k": 1.5}}, {"outcome": "x"}, {"nope": 1}):
        assert_envelope(client.post(f"{BASE}/recall", json={"query": "q", "filters": flt}), 422)


def test_recall_learn_false_is_read_only(client: TestClient, clock: ManualClock) -> None:
    ep = create(client, content="the staging database password")
    clock.advance(days=3)
    res = recall(client, "staging database password", learn=False)
    assert res["hits"][0]["id"] == ep["id"]
    after = client.get(f"{BASE}/{ep['id']}").json()
    assert after["access_count"] == 0
    assert after["last_accessed"] is None
    assert after["fsrs"] == ep["fsrs"]


def test_recall_learn_true_records_access(client: TestClient, clock: ManualClock) -> None:
    ep = create(client, content="the staging database password")
    other = create(client, content="a completely unrelated haiku about autumn")
    clock.advance(days=3, hours=4)
    res = recall(client, "staging database password", limit=1)
    assert [h["id"] for h in res["hits"]] == [ep["id"]]
    after = client.get(f"{BASE}/{ep['id']}").json()
    assert after["access_count"] == 1
    assert parse_ts(after["last_accessed"]) == T0 + timedelta(days=3, hours=4)
    assert after["fsrs"]["reps"] == ep["fsrs"]["reps"] + 1
    assert parse_ts(after["fsrs"]["last_review"]) == T0 + timedelta(days=3, hours=4)
    assert after["fsrs"]["stability"] > ep["fsrs"]["stability"]
    # Only hits are reviewed.
    untouched = client.get(f"{BASE}/{other['id']}").json()
    assert untouched["access_count"] == 0
    assert untouched["fsrs"] == other["fsrs"]
    # A second recall counts again.
    clock.advance(hours=1)
    recall(client, "staging database password", limit=1)
    again = client.get(f"{BASE}/{ep['id']}").json()
    assert again["access_count"] == 2
    assert parse_ts(again["last_accessed"]) == T0 + timedelta(days=3, hours=5)


def test_archived_excluded_from_recall_and_list_unless_asked(
    client: TestClient, session: str
) -> None:
    ep = create(client, content="an old design doc for the search service")
    live = create(client, content="the new design doc for the search service")
    r = client.patch(f"{BASE}/{ep['id']}", json={"archived": True})
    assert r.status_code == 200
    assert r.json()["archived"] is True

    assert list_ids(client) == [live["id"]]
    assert set(list_ids(client, include_archived="true")) == {ep["id"], live["id"]}

    query = "design doc for the search service"
    assert [h["id"] for h in recall(client, query, learn=False)["hits"]] == [live["id"]]
    got = recall(client, query, learn=False, filters={"include_archived": True})["hits"]
    assert {h["id"] for h in got} == {ep["id"], live["id"]}

    stats = client.get(f"/api/v1/sessions/{session}").json()
    assert stats["archived"] == 1
    assert stats["episodes"] == 2

    # Unarchive brings it back.
    client.patch(f"{BASE}/{ep['id']}", json={"archived": False})
    assert {h["id"] for h in recall(client, query, learn=False)["hits"]} == {
        ep["id"],
        live["id"],
    }
