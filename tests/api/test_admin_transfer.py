"""/api/v1/admin/export and /import end to end, on real stores and the real model.

The round trip goes source -> middle -> destination. The middle hop is parametrised by
the backends of its store: a second embedded data directory, and SQLite with the Qdrant
server index (qdrant-client in local mode), and the Neo4j record store (the test Neo4j,
started on first use).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from tests.api.helpers import assert_envelope, running_client, scratch_dir
from tests.conftest import ManualClock
from ww.embedding import OnnxEmbedder

NDJSON = {"Content-Type": "application/x-ndjson"}
# (running_client arguments of the middle store, whether it keeps vectors bit for bit).
# A vector index that normalises what it stores again (qdrant-client's local mode does, in
# its own arithmetic) may move a component by one float32 ulp; everything else must match
# exactly. ``{"neo4j": True}`` stands for the test Neo4j's URI, known only once it runs.
MIDDLE = [
    pytest.param({}, True, id="embedded"),
    pytest.param({"vectors": "qdrant_local"}, False, id="sqlite+qdrant-server"),
    pytest.param({"neo4j": True}, True, id="neo4j"),
]


def export(client: TestClient, **params: Any) -> bytes:
    r = client.get("/api/v1/admin/export", params=params)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/x-ndjson")
    return r.content


def import_(client: TestClient, body: bytes, status: int = 200, **params: Any) -> dict[str, Any]:
    r = client.post("/api/v1/admin/import", content=body, headers=NDJSON, params=params)
    assert r.status_code == status, r.text
    return dict(r.json())


def lines(body: bytes) -> list[dict[str, Any]]:
    return [json.loads(x) for x in body.splitlines()]


def assert_same_export(got: bytes, want: bytes, *, exact: bool) -> None:
    if exact:
        assert got == want
        return
    got_rows, want_rows = lines(got), lines(want)
    assert len(got_rows) == len(want_rows)
    for a, b in zip(got_rows, want_rows, strict=True):
        va, vb = a.pop("vector", None), b.pop("vector", None)
        assert a == b
        assert (va is None) == (vb is None)
        if va is not None:
            assert np.allclose(va, vb, rtol=0.0, atol=1e-6)


def assert_same_recalls(got: list[Any], want: list[Any], *, exact: bool) -> None:
    """The same hits in the same order with the same memories; scores equal (or within
    float32 rounding when the middle store's vectors may differ in the last bit)."""
    if exact:
        assert got == want
        return
    assert len(got) == len(want)
    for g, w in zip(got, want, strict=True):
        assert [h["id"] for h in g["hits"]] == [h["id"] for h in w["hits"]]
        assert {k: v for k, v in g.items() if k != "hits"} == {
            k: v for k, v in w.items() if k != "hits"
        }
        for hg, hw in zip(g["hits"], w["hits"], strict=True):
            rounded = ("score", "score_parts", "relevance")
            assert {k: v for k, v in hg.items() if k not in rounded} == {
                k: v for k, v in hw.items() if k not in rounded
            }
            assert hg["score"] == pytest.approx(hw["score"], abs=1e-6)
            assert hg.get("relevance") == pytest.approx(hw.get("relevance"), abs=1e-6)
            assert hg["score_parts"] == pytest.approx(hw["score_parts"], abs=1e-6)


def populate(c: TestClient, clock: ManualClock) -> None:
    """Two sessions with every kind of record and learning state moved off its defaults."""
    for session in ("alpha", "beta"):
        h = {"X-Session-ID": session}
        eps = c.post(
            "/api/v1/episodes/batch",
            headers=h,
            json={
                "episodes": [
                    {
                        "content": f"{session}: deployed billing v{i}; migration took {i} min",
                        "speaker": "ops" if i % 2 else "dev",
                        "timestamp": f"2026-03-0{i + 1}T10:00:00.123456Z",
                        "context": {"project": "billing", "extra": {"n": i, "ok": True}},
                        "metadata": {"ticket": f"OPS-{i}", "weight": 0.25 * i},
                        "external_id": f"chat-{i}",
                        "outcome": ["success", "failure", "partial", "neutral"][i % 4],
                        "importance": 0.1 * (i + 1),
                    }
                    for i in range(6)
                ]
            },
        ).json()["episodes"]
        clock.advance(hours=3)
        assert c.patch(f"/api/v1/episodes/{eps[0]['id']}", headers=h, json={"archived": True})
        c.post(f"/api/v1/episodes/{eps[1]['id']}/mark-important", headers=h, json={})
        clock.advance(hours=5)
        c.post("/api/v1/episodes/recall", headers=h, json={"query": "billing migration"})

        ents = [
            c.post(
                "/api/v1/entities",
                headers=h,
                json={"name": n, "entity_type": t, "summary": f"{n} in {session}"},
            ).json()
            for n, t in (("Postgres", "TOOL"), ("Billing", "PROJECT"), ("Alice", "PERSON"))
        ]
        for src, dst, w in ((0, 1, 0.8), (2, 1, 0.4)):
            r = c.post(
                f"/api/v1/entities/{ents[src]['id']}/relations",
                headers=h,
                json={"target_id": ents[dst]["id"], "relation_type": "USES", "weight": w},
            )
            assert r.status_code == 201, r.text
        clock.advance(days=1)
        r = c.post(
            f"/api/v1/entities/{ents[1]['id']}/supersede",
            headers=h,
            json={"summary": f"billing v2 in {session}"},
        )
        assert r.status_code == 201, r.text
        clock.advance(hours=2)
        c.post("/api/v1/entities/recall", headers=h, json={"query": "billing database"})

        skills = [
            c.post(
                "/api/v1/skills",
                headers=h,
                json={
                    "name": name,
                    "domain": "ops",
                    "task": f"{name} the billing service",
                    "steps": [
                        {"order": 1, "action": "build", "tool": "make", "parameters": {"j": 2}},
                        {"order": 2, "action": name, "expected_outcome": "green"},
                    ],
                },
            ).json()
            for name in ("deploy", "rollback")
        ]
        clock.advance(hours=1)
        c.patch(f"/api/v1/skills/{skills[0]['id']}", headers=h, json={"trigger_pattern": "ship"})
        for ok in (True, False, True):
            clock.advance(minutes=7)
            body = {"success": ok} if ok else {"success": False, "failed_step": 2, "error": "x"}
            r = c.post(f"/api/v1/skills/{skills[0]['id']}/execute", headers=h, json=body)
            assert r.status_code == 200, r.text
        c.post(
            f"/api/v1/skills/{skills[1]['id']}/deprecate",
            headers=h,
            json={"replaced_by": skills[0]["id"]},
        )
        c.post("/api/v1/skills/recall", headers=h, json={"query": "deploy billing"})
    clock.advance(hours=4)


def recalls(c: TestClient) -> list[Any]:
    """Read-only recall of every kind in every session, as the API returns it."""
    out: list[Any] = []
    for session in ("alpha", "beta"):
        h = {"X-Session-ID": session}
        for path, body in (
            ("/api/v1/episodes/recall", {"query": "billing migration", "learn": False}),
            (
                "/api/v1/episodes/recall",
                {"query": "deploy", "learn": False, "filters": {"include_archived": True}},
            ),
            ("/api/v1/entities/recall", {"query": "billing database", "learn": False}),
            ("/api/v1/skills/recall", {"query": "deploy billing", "learn": False}),
        ):
            r = c.post(path, headers=h, json=body)
            assert r.status_code == 200, r.text
            result = r.json()
            result.pop("recall_id")
            out.append(result)
    return out


@pytest.fixture(scope="module")
def source(onnx_embedder: OnnxEmbedder) -> Iterator[tuple[bytes, list[Any], ManualClock]]:
    """A populated store's export, its recall results, and the clock they were taken at."""
    clock = ManualClock()
    with scratch_dir() as tmp, running_client(tmp / "src", onnx_embedder, clock) as c:
        populate(c, clock)
        yield export(c), recalls(c), clock


def test_export_format(source: tuple[bytes, list[Any], ManualClock]) -> None:
    body, _, _ = source
    rows = lines(body)
    header, trailer = rows[0], rows[-1]
    assert header["kind"] == "header" and header["format"] == "ww-export"
    assert header["version"] == 1 and header["vectors"] is True and header["session_id"] is None
    assert header["embedding_model"] == "all-MiniLM-L6-v2-int8"
    assert header["embedding_dimension"] == 384
    kinds = [r["kind"] for r in rows[1:-1]]
    assert trailer == {
        "kind": "trailer",
        "counts": {k: kinds.count(k) for k in dict.fromkeys(trailer["counts"])},
    }
    # 6 episodes, 4 entity versions, 2 relations + 2 copied by the supersede, 2 skills, one
    # previous version, 3 executions, in each of the two sessions.
    assert trailer["counts"] == {
        "session": 2,
        "episode": 12,
        "entity": 8,
        "relation": 8,
        "skill": 4,
        "skill_version": 2,
        "skill_execution": 6,
        "hebbian_edge": trailer["counts"]["hebbian_edge"],  # as the learning flags decide
        "ff_encoder": 0,  # no feedback trained one
    }
    for row in rows[1:-1]:
        assert "index_state" not in row["record"]
        if row["kind"] in ("episode", "entity", "skill"):
            assert len(row["vector"]) == 384
        if row["kind"] in ("entity", "skill"):
            assert row["access_times"], row
    # The learning state is there, moved off its defaults by the recalls above.
    episodes = [r["record"] for r in rows if r["kind"] == "episode"]
    assert any(e["access_count"] > 0 and e["fsrs"]["reps"] > 0 for e in episodes)
    assert any(e["archived"] for e in episodes)
    entities = [r["record"] for r in rows if r["kind"] == "entity"]
    assert any(e["valid_to"] is not None for e in entities)
    skills = [r["record"] for r in rows if r["kind"] == "skill"]
    assert any(s["deprecated"] for s in skills) and any(s["successes"] == 2 for s in skills)


@pytest.mark.parametrize(("middle", "exact"), MIDDLE)
def test_round_trip_through_another_store_loses_nothing(
    source: tuple[bytes, list[Any], ManualClock],
    middle: dict[str, Any],
    exact: bool,
    onnx_embedder: OnnxEmbedder,
    request: pytest.FixtureRequest,
) -> None:
    body, before, src_clock = source
    if middle.get("neo4j"):
        uri = request.getfixturevalue("neo4j_server").uri
        middle = {k: v for k, v in middle.items() if k != "neo4j"} | {"neo4j_uri": uri}
    clock = ManualClock(src_clock.now)  # recall depends on the time; use the source's
    with scratch_dir() as tmp:
        with running_client(tmp / "mid", onnx_embedder, clock, **middle) as mid:
            report = import_(mid, body)
            assert report["reembedded"] == 0 and report["pending"] == 0
            assert report["counts"] == lines(body)[-1]["counts"]
            mid_body = export(mid)
            assert_same_recalls(recalls(mid), before, exact=exact)
        with running_client(tmp / "dst", onnx_embedder, clock) as dst:
            import_(dst, mid_body)
            again = export(dst)
            assert_same_recalls(recalls(dst), before, exact=exact)
            sessions = dst.get("/api/v1/sessions").json()["sessions"]
    # Byte for byte: the same clock writes the same header, pages come in a fixed order,
    # and vectors are written as the shortest text that reads back to the same float32.
    assert_same_export(mid_body, body, exact=exact)
    assert_same_export(again, body, exact=exact)
    assert [s["session_id"] for s in sessions] == ["alpha", "beta"]
    assert all(s["pending"] == 0 for s in sessions)


def test_import_is_idempotent(
    source: tuple[bytes, list[Any], ManualClock], onnx_embedder: OnnxEmbedder
) -> None:
    body, before, src_clock = source
    clock = ManualClock(src_clock.now)
    with scratch_dir() as tmp, running_client(tmp / "d", onnx_embedder, clock) as c:
        first = import_(c, body)
        stats = c.get("/api/v1/sessions").json()
        second = import_(c, body)
        assert first == second
        assert c.get("/api/v1/sessions").json() == stats
        assert export(c) == body  # no duplicates, nothing changed
        assert recalls(c) == before
        history = c.get(
            "/api/v1/entities", headers={"X-Session-ID": "alpha"}, params={"include_closed": True}
        ).json()["items"]
        assert len(history) == 4


def test_session_scoped_export_holds_only_that_session(
    source: tuple[bytes, list[Any], ManualClock], onnx_embedder: OnnxEmbedder
) -> None:
    body, _, src_clock = source
    clock = ManualClock(src_clock.now)
    with scratch_dir() as tmp, running_client(tmp / "d", onnx_embedder, clock) as c:
        import_(c, body)
        beta = export(c, session_id="beta")
        missing = c.get("/api/v1/admin/export", params={"session_id": "nobody"})
        assert_envelope(missing, 404, "not_found")
    rows = lines(beta)
    assert rows[0]["session_id"] == "beta"
    assert {r["session_id"] for r in rows[1:-1]} == {"beta"}
    assert "alpha" not in beta.decode()
    everything = [r for r in lines(body)[1:-1] if r["session_id"] == "beta"]
    assert rows[1:-1] == everything
    assert sum(rows[-1]["counts"].values()) == len(everything)


def test_export_without_vectors_and_reembed_under_another_model(
    source: tuple[bytes, list[Any], ManualClock], onnx_embedder: OnnxEmbedder
) -> None:
    body, before, src_clock = source
    clock = ManualClock(src_clock.now)
    with scratch_dir() as tmp:
        with running_client(tmp / "a", onnx_embedder, clock) as c:
            import_(c, body)
            bare = export(c, vectors="false")
        rows = lines(bare)
        assert rows[0]["vectors"] is False
        assert not any("vector" in r for r in rows)
        # The file claims another model: its (absent) vectors cannot be used anyway.
        rows[0]["embedding_model"] = "some-other-model"
        foreign = b"".join(json.dumps(r).encode() + b"\n" for r in rows)
        with running_client(tmp / "b", onnx_embedder, clock) as c:
            never = c.post(
                "/api/v1/admin/import", content=foreign, headers=NDJSON, params={"reembed": "never"}
            )
            assert_envelope(never, 422, "embedding_mismatch")
            assert "line 1" in never.json()["error"]["message"]
            assert c.get("/api/v1/sessions").json()["sessions"] == []
            report = import_(c, foreign)
            counts = report["counts"]
            assert report["reembedded"] == counts["episode"] + counts["entity"] + counts["skill"]
            assert recalls(c) == before  # recomputed vectors: the same model, the same vectors
            assert export(c) == body


def test_reembed_replaces_vectors_of_another_model(
    source: tuple[bytes, list[Any], ManualClock], onnx_embedder: OnnxEmbedder
) -> None:
    body, before, src_clock = source
    rows = lines(body)
    # An export from an 8-dimensional model: the vectors are someone else's.
    rows[0].update(embedding_model="tiny-8d", embedding_dimension=8)
    for r in rows:
        if "vector" in r:
            r["vector"] = [0.5] * 8
    foreign = b"".join(json.dumps(r).encode() + b"\n" for r in rows)
    clock = ManualClock(src_clock.now)
    with scratch_dir() as tmp, running_client(tmp / "d", onnx_embedder, clock) as c:
        report = import_(c, foreign)
        assert report["reembedded"] == 12 + 8 + 4
        assert report["embedding_model"] == "tiny-8d"
        assert recalls(c) == before
        assert export(c) == body


def test_reembed_always_recomputes_and_auto_fills_missing_vectors(
    source: tuple[bytes, list[Any], ManualClock], onnx_embedder: OnnxEmbedder
) -> None:
    body, _, src_clock = source
    rows = lines(body)
    del rows[2]["vector"]  # one episode without its vector
    partial = b"".join(json.dumps(r).encode() + b"\n" for r in rows)
    clock = ManualClock(src_clock.now)
    with scratch_dir() as tmp, running_client(tmp / "d", onnx_embedder, clock) as c:
        assert import_(c, partial)["reembedded"] == 1
        assert export(c) == body
        assert import_(c, body, reembed="always")["reembedded"] == 24
        assert export(c) == body
        r = c.post(
            "/api/v1/admin/import", content=partial, headers=NDJSON, params={"reembed": "never"}
        )
        assert_envelope(r, 422, "invalid_line")
        assert r.json()["error"]["message"].startswith("line 3:")


def _corrupt(body: bytes, index: int, text: bytes) -> bytes:
    parts = body.splitlines()
    parts[index] = text
    return b"\n".join(parts) + b"\n"


@pytest.fixture(scope="module")
def empty_client(onnx_embedder: OnnxEmbedder) -> Iterator[TestClient]:
    with scratch_dir() as tmp, running_client(tmp / "d", onnx_embedder, ManualClock()) as c:
        yield c


def _refused(c: TestClient, body: bytes, status: int, code: str, line: int | None) -> str:
    r = c.post("/api/v1/admin/import", content=body, headers=NDJSON)
    err = assert_envelope(r, status, code)
    if line is not None:
        assert err["message"].startswith(f"line {line}:"), err
    # Validation runs over the whole body first: a refused import writes nothing.
    assert c.get("/api/v1/sessions").json()["sessions"] == []
    return str(err["message"])


def test_malformed_and_invalid_lines_are_refused_with_their_line_number(
    source: tuple[bytes, list[Any], ManualClock], empty_client: TestClient
) -> None:
    body, _, _ = source
    rows = lines(body)
    last = len(rows) - 1
    c = empty_client
    _refused(c, _corrupt(body, 5, b'{"kind": "episode", '), 400, "malformed_line", 6)
    _refused(c, _corrupt(body, 5, b"[1, 2]"), 400, "malformed_line", 6)
    bad_vector = dict(rows[5], vector=[1.0, 2.0])
    _refused(c, _corrupt(body, 5, json.dumps(bad_vector).encode()), 422, "invalid_line", 6)
    nan = json.dumps(rows[5])[:-1].encode() + b', "extra": NaN}'
    _refused(c, _corrupt(body, 5, nan), 400, "malformed_line", 6)
    unknown = dict(rows[5], kind="dream")
    assert "unknown kind" in _refused(
        c, _corrupt(body, 5, json.dumps(unknown).encode()), 422, "invalid_line", 6
    )
    extra_field = dict(rows[5], record=dict(rows[5]["record"], mood="happy"))
    _refused(c, _corrupt(body, 5, json.dumps(extra_field).encode()), 422, "invalid_line", 6)
    out_of_range = dict(rows[5], record=dict(rows[5]["record"], importance=7))
    _refused(c, _corrupt(body, 5, json.dumps(out_of_range).encode()), 422, "invalid_line", 6)
    wrong_session = dict(rows[5], session_id="beta")
    _refused(c, _corrupt(body, 5, json.dumps(wrong_session).encode()), 422, "invalid_line", 6)
    # Duplicates, dangling references, a truncated file, a lying trailer.
    _refused(c, _corrupt(body, 6, json.dumps(rows[5]).encode()), 422, "invalid_line", 7)
    first_rel = next(i for i, r in enumerate(rows) if r["kind"] == "relation")
    dangling = dict(rows[first_rel])
    dangling["record"] = dict(dangling["record"], target_id="00000000-0000-4000-8000-000000000000")
    msg = _refused(
        c, _corrupt(body, first_rel, json.dumps(dangling).encode()), 422, "invalid_line", None
    )
    assert f"line {first_rel + 1}:" in msg and "neither earlier in the file" in msg
    truncated = b"\n".join(body.splitlines()[:last]) + b"\n"
    _refused(c, truncated, 422, "truncated_export", None)
    lying = dict(rows[last], counts=dict(rows[last]["counts"], episode=99))
    _refused(c, _corrupt(body, last, json.dumps(lying).encode()), 422, "truncated_export", last + 1)
    _refused(c, body + body.splitlines()[1] + b"\n", 422, "invalid_export", last + 2)
    _refused(c, b"", 422, "invalid_export", None)
    _refused(c, b"\n".join(body.splitlines()[1:]), 422, "invalid_export", 1)


def test_version_and_format_mismatch_are_refused(
    source: tuple[bytes, list[Any], ManualClock], empty_client: TestClient
) -> None:
    body, _, _ = source
    header = lines(body)[0]
    for change in ({"version": 2}, {"version": "1"}, {"format": "other"}):
        bad = _corrupt(body, 0, json.dumps({**header, **change}).encode())
        msg = _refused(empty_client, bad, 422, "unsupported_export", 1)
        assert "version" in msg or "format" in msg


def test_import_needs_ndjson_and_respects_the_body_limit(
    source: tuple[bytes, list[Any], ManualClock], onnx_embedder: OnnxEmbedder
) -> None:
    body, _, _ = source
    with scratch_dir() as tmp:
        limit = 64 * 1024
        assert len(body) > limit
        with running_client(tmp / "d", onnx_embedder, ManualClock(), api_max_body_bytes=limit) as c:
            r = c.post("/api/v1/admin/import", content=body, headers=NDJSON)
            assert_envelope(r, 413, "payload_too_large")
            small = export_small(body, "alpha")
            assert len(small) < limit
            r = c.post("/api/v1/admin/import", content=small, headers={"Content-Type": "text/csv"})
            assert_envelope(r, 415)
            r = c.post(
                "/api/v1/admin/import",
                content=small,
                headers={"Content-Type": "application/jsonl; charset=utf-8"},
            )
            assert r.status_code == 200, r.text


def export_small(body: bytes, session: str) -> bytes:
    """One session's session line and episodes without vectors, with a matching trailer."""
    rows = lines(body)
    keep = [
        {k: v for k, v in r.items() if k != "vector"}
        for r in rows[1:-1]
        if r["session_id"] == session and r["kind"] in ("session", "episode")
    ]
    trailer = {"kind": "trailer", "counts": {"session": 1, "episode": len(keep) - 1}}
    return b"".join(json.dumps(r).encode() + b"\n" for r in [rows[0], *keep, trailer])


def test_an_id_of_another_session_is_a_conflict(
    source: tuple[bytes, list[Any], ManualClock], onnx_embedder: OnnxEmbedder
) -> None:
    body, _, _ = source
    alpha = export_small(body, "alpha")
    # The same records renamed into a new session: their ids already belong to alpha.
    stolen = alpha.replace(b'"alpha"', b'"gamma"').replace(b"alpha:", b"gamma:")
    with scratch_dir() as tmp, running_client(tmp / "d", onnx_embedder, ManualClock()) as c:
        import_(c, alpha)
        r = c.post("/api/v1/admin/import", content=stolen, headers=NDJSON)
        err = assert_envelope(r, 409, "import_conflict")
        assert "another session" in err["message"]
        got = c.get("/api/v1/episodes", headers={"X-Session-ID": "alpha"}).json()["items"]
        assert len(got) == 5 and all(e["content"].startswith("alpha:") for e in got)  # 1 archived
        assert c.get("/api/v1/episodes", headers={"X-Session-ID": "gamma"}).json()["items"] == []
