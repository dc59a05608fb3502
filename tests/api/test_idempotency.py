"""``Idempotency-Key``: a write retried with its key is done once, whatever happens between."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from typing import Any
from unittest import mock

import httpx
import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.api.helpers import assert_envelope, new_session_id, running_client, scratch_dir
from tests.conftest import ManualClock
from tests.factories import T0
from ww.api.idempotency import IN_PROGRESS_TIMEOUT, REPLAYED_HEADER, Idempotency, fingerprint
from ww.embedding import OnnxEmbedder
from ww.engine import MemoryEngine
from ww.storage.guarded import unwrap
from ww.storage.ports import StoreUnavailableError
from ww.storage.ports.idempotency import Reservation

EPISODES = "/api/v1/episodes"
_CLOCK = ManualClock()
TTL_HOURS = 2.0


@pytest.fixture(scope="module")
def shared_client(onnx_embedder: OnnxEmbedder) -> Iterator[TestClient]:
    with (
        scratch_dir() as tmp,
        running_client(tmp / "data", onnx_embedder, _CLOCK, idempotency_ttl_hours=TTL_HOURS) as c,
    ):
        yield c


@pytest.fixture
def clock() -> ManualClock:
    _CLOCK.now = T0
    return _CLOCK


@pytest.fixture
def session() -> str:
    return new_session_id("idem")


@pytest.fixture
def client(shared_client: TestClient, clock: ManualClock, session: str) -> Iterator[TestClient]:
    shared_client.headers["X-Session-ID"] = session
    yield shared_client
    del shared_client.headers["X-Session-ID"]


def keyed(key: str, **extra: str) -> dict[str, str]:
    return {"Idempotency-Key": key, **extra}


def held(client: TestClient, session: str) -> dict[str, int]:
    """What the session holds (zeros when it was never written)."""
    r = client.get(f"/api/v1/sessions/{session}")
    if r.status_code == 404:
        return {"episodes": 0, "entities": 0, "skills": 0}
    body = r.json()
    return {k: body[k] for k in ("episodes", "entities", "skills")}


# -- replay --------------------------------------------------------------------------------
def test_a_retry_gets_the_first_answer_and_stores_nothing_new(
    client: TestClient, session: str
) -> None:
    body = {"content": "the billing deploy failed", "metadata": {"a": 1, "b": "x"}}
    first = client.post(EPISODES, json=body, headers=keyed("k-1"))
    assert first.status_code == 201, first.text
    assert REPLAYED_HEADER not in first.headers
    # Key order and spacing do not make another request: the JSON value is the same.
    again = client.post(
        EPISODES,
        content=b'{ "metadata": {"b": "x", "a": 1}, "content": "the billing deploy failed" }',
        headers=keyed("k-1", **{"Content-Type": "application/json"}),
    )
    assert again.status_code == 201
    assert again.headers[REPLAYED_HEADER] == "true"
    assert again.json() == first.json()
    assert held(client, session)["episodes"] == 1
    # Without a key every request is a new write (at-least-once).
    assert client.post(EPISODES, json=body).status_code == 201
    assert held(client, session)["episodes"] == 2


def test_the_same_key_for_another_request_is_refused(client: TestClient, session: str) -> None:
    assert client.post(EPISODES, json={"content": "a"}, headers=keyed("k")).status_code == 201
    r = client.post(EPISODES, json={"content": "b"}, headers=keyed("k"))
    assert_envelope(r, 422, "idempotency_key_reused")
    # Another route with the same key is another request too.
    r = client.post(f"{EPISODES}/batch", json={"episodes": [{"content": "a"}]}, headers=keyed("k"))
    assert_envelope(r, 422, "idempotency_key_reused")
    assert held(client, session)["episodes"] == 1


def test_keys_belong_to_their_session(client: TestClient, session: str) -> None:
    other = new_session_id("idem-other")
    body = {"content": "same text, same key"}
    a = client.post(EPISODES, json=body, headers=keyed("shared"))
    b = client.post(EPISODES, json=body, headers=keyed("shared", **{"X-Session-ID": other}))
    assert (a.status_code, b.status_code) == (201, 201)
    assert REPLAYED_HEADER not in b.headers
    assert a.json()["id"] != b.json()["id"]
    assert held(client, session)["episodes"] == held(client, other)["episodes"] == 1


@pytest.mark.parametrize(
    "key",
    ["", " ", "a b", "x" * 256, "caf\u00e9".encode("latin-1"), "tab\there"],
    ids=lambda k: repr(k)[:12],
)
def test_a_malformed_key_is_a_400(client: TestClient, session: str, key: str | bytes) -> None:
    raw = key if isinstance(key, bytes) else key.encode()
    r = client.post(EPISODES, json={"content": "a"}, headers=[(b"Idempotency-Key", raw)])
    assert_envelope(r, 400, "invalid_idempotency_key")
    assert held(client, session)["episodes"] == 0


def test_the_longest_and_oddest_valid_keys_work(client: TestClient) -> None:
    for key in ("x" * 255, "!~{}\"'/\\:;", "7"):
        assert client.post(EPISODES, json={"content": key}, headers=keyed(key)).status_code == 201


# -- every write route ----------------------------------------------------------------------
def _entity(client: TestClient) -> str:
    r = client.post("/api/v1/entities", json={"name": "Postgres", "summary": "the database"})
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


def _skill(client: TestClient) -> str:
    body = {"name": "deploy", "task": "deploy the service", "steps": [{"order": 1, "action": "go"}]}
    r = client.post("/api/v1/skills", json=body)
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


def _count_relations(client: TestClient, entity: str) -> int:
    return len(client.get(f"/api/v1/entities/{entity}/relations").json()["items"])


def _count_executions(client: TestClient, skill: str) -> int:
    return len(client.get(f"/api/v1/skills/{skill}/executions").json()["items"])


# (route, body, what to count) given the ids the setup made
Write = tuple[str, dict[str, Any], Callable[[TestClient, str], int]]


def _writes(client: TestClient, session: str) -> dict[str, Write]:
    entity, other, skill = _entity(client), _entity(client), _skill(client)
    count: Callable[[str], Callable[[TestClient, str], int]] = lambda kind: (  # noqa: E731
        lambda c, s: held(c, s)[kind]
    )
    return {
        "episode": (EPISODES, {"content": "x"}, count("episodes")),
        "batch": (f"{EPISODES}/batch", {"episodes": [{"content": "y"}]}, count("episodes")),
        "entity": ("/api/v1/entities", {"name": "Redis"}, count("entities")),
        "supersede": (f"/api/v1/entities/{entity}/supersede", {"summary": "v2"}, count("entities")),
        "relation": (
            f"/api/v1/entities/{other}/relations",
            {"target_id": entity, "relation_type": "USES"},
            lambda c, _: _count_relations(c, other),
        ),
        "skill": (
            "/api/v1/skills",
            {"name": "rollback", "task": "roll back", "steps": [{"order": 1, "action": "undo"}]},
            count("skills"),
        ),
        "execute": (
            f"/api/v1/skills/{skill}/execute",
            {"success": True},
            lambda c, _: _count_executions(c, skill),
        ),
    }


@pytest.mark.parametrize(
    "name", ["episode", "batch", "entity", "supersede", "relation", "skill", "execute"]
)
def test_every_create_route_writes_once_per_key(
    client: TestClient, session: str, name: str
) -> None:
    route, body, count = _writes(client, session)[name]
    _CLOCK.advance(seconds=1)  # a new version must start after the one it supersedes
    before = count(client, session)
    first = client.post(route, json=body, headers=keyed(f"key-{name}"))
    assert 200 <= first.status_code < 300, first.text
    assert count(client, session) == before + 1
    for _ in range(3):
        again = client.post(route, json=body, headers=keyed(f"key-{name}"))
        assert (again.status_code, again.json()) == (first.status_code, first.json())
        assert again.headers[REPLAYED_HEADER] == "true"
    assert count(client, session) == before + 1


def test_every_post_of_the_memory_routers_documents_the_header(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    with_header: set[str] = set()
    without: set[str] = set()
    for path, ops in spec["paths"].items():
        if "post" not in ops:
            continue
        params = {p["name"] for p in ops["post"].get("parameters", [])}
        (with_header if "Idempotency-Key" in params else without).add(path)
    assert {
        "/api/v1/episodes",
        "/api/v1/episodes/batch",
        "/api/v1/entities",
        "/api/v1/entities/{entity_id}/supersede",
        "/api/v1/entities/{entity_id}/relations",
        "/api/v1/skills",
        "/api/v1/skills/{skill_id}/execute",
        "/api/v1/feedback",
        "/api/v1/episodes/{episode_id}/mark-important",
        "/api/v1/consolidate",
    } <= with_header
    # Control POSTs set a state (a level, a breaker's reset): sending one twice is harmless.
    control = {p for p in without if p.startswith("/api/v1/control/")}
    assert control >= {"/api/v1/control/emergency/panic", "/api/v1/control/emergency/recover"}
    assert without - control == {"/api/v1/admin/import"}


# -- failures, concurrency, expiry -----------------------------------------------------------
def test_a_failed_write_leaves_the_key_free_to_retry(client: TestClient, session: str) -> None:
    body = {"content": "written on the second try"}
    fault = StoreUnavailableError("sqlite", "disk I/O error")
    with mock.patch.object(MemoryEngine, "create_episodes", autospec=True, side_effect=fault):
        assert_envelope(client.post(EPISODES, json=body, headers=keyed("retry")), 503)
    ok = client.post(EPISODES, json=body, headers=keyed("retry"))
    assert ok.status_code == 201 and REPLAYED_HEADER not in ok.headers
    # A 4xx is not remembered either: the same key may carry the corrected request.
    r = client.post("/api/v1/entities/not-a-uuid/relations", json={}, headers=keyed("fix-me"))
    assert r.status_code == 422
    assert client.post(EPISODES, json=body, headers=keyed("fix-me")).status_code == 201
    assert held(client, session)["episodes"] == 2


def test_a_write_whose_answer_cannot_be_stored_is_still_acknowledged(
    client: TestClient, session: str, clock: ManualClock
) -> None:
    """The store failing between the write and storing its answer (a fault no test can time
    for real): the memory is committed, so the client gets its 201; the key stays reserved
    until it goes stale, so a retry cannot write it twice meanwhile."""
    body = {"content": "written, answer not kept"}
    # The class of the store behind the database's circuit breaker.
    store_class = type(unwrap(_idempotency(client).store))
    fault = StoreUnavailableError("sqlite", "disk I/O error")
    with mock.patch.object(store_class, "complete", autospec=True, side_effect=fault):
        assert client.post(EPISODES, json=body, headers=keyed("lost")).status_code == 201
    assert_envelope(
        client.post(EPISODES, json=body, headers=keyed("lost")), 409, "idempotency_key_in_progress"
    )
    assert held(client, session)["episodes"] == 1


def _idempotency(client: TestClient) -> Idempotency:
    app: Any = client.app
    idem: Idempotency = app.state.idempotency
    return idem


def _reserve(client: TestClient, session: str, key: str, body: bytes) -> None:
    """Reserve ``key`` as a request of another worker still writing would have."""
    idem = _idempotency(client)
    fp = fingerprint("POST", EPISODES, "", body)
    now = _CLOCK()

    async def claim() -> None:
        await idem.store.claim(
            session, key, Reservation(fp, "another-worker", now), idem.horizon(now)
        )

    portal: Any = getattr(client, "portal")  # noqa: B009 -- set while the client runs
    portal.call(claim)


def test_a_key_in_flight_is_a_409_until_its_reservation_goes_stale(
    client: TestClient, session: str, clock: ManualClock
) -> None:
    body = b'{"content":"slow write"}'
    _reserve(client, session, "busy", body)
    headers = keyed("busy", **{"Content-Type": "application/json"})
    r = client.post(EPISODES, content=body, headers=headers)
    assert_envelope(r, 409, "idempotency_key_in_progress")
    assert r.headers["Retry-After"] == "1"
    assert held(client, session)["episodes"] == 0
    # The holder died: once its reservation is stale a retry takes the key over.
    clock.advance(seconds=IN_PROGRESS_TIMEOUT.total_seconds() + 1)
    assert client.post(EPISODES, content=body, headers=headers).status_code == 201
    assert held(client, session)["episodes"] == 1


def test_of_concurrent_requests_with_one_key_exactly_one_writes(
    client: TestClient, session: str
) -> None:
    """Eight copies of one request at once, as a client retrying on a short timeout sends
    them: one runs, the others see it in flight (409) or, once it finished, its answer."""
    body = {"content": "sent eight times at once"}
    headers = {"X-Session-ID": session, "Idempotency-Key": "race"}

    async def burst() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=client.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://ww") as http:
            sends = (http.post(EPISODES, json=body, headers=headers) for _ in range(8))
            return list(await asyncio.gather(*sends))

    portal: Any = getattr(client, "portal")  # noqa: B009 -- set while the client runs
    answers = portal.call(burst)
    statuses = sorted(r.status_code for r in answers)
    assert statuses.count(201) >= 1 and set(statuses) <= {201, 409}
    created = {r.json()["id"] for r in answers if r.status_code == 201}
    assert len(created) == 1
    assert sum(REPLAYED_HEADER not in r.headers for r in answers if r.status_code == 201) == 1
    assert held(client, session)["episodes"] == 1


def test_answers_expire_after_the_retention_window(
    client: TestClient, session: str, clock: ManualClock
) -> None:
    body = {"content": "kept two hours"}
    first = client.post(EPISODES, json=body, headers=keyed("ttl")).json()
    clock.advance(hours=TTL_HOURS, seconds=-1)
    assert client.post(EPISODES, json=body, headers=keyed("ttl")).json() == first
    assert held(client, session)["episodes"] == 1
    clock.advance(seconds=2)
    later = client.post(EPISODES, json=body, headers=keyed("ttl"))
    assert later.status_code == 201 and later.json()["id"] != first["id"]
    assert held(client, session)["episodes"] == 2


def test_maintenance_purges_expired_answers_and_session_deletion_forgets_keys(
    client: TestClient, session: str, clock: ManualClock
) -> None:
    client.post(EPISODES, json={"content": "a"}, headers=keyed("gone-with-session"))
    assert client.delete(f"/api/v1/sessions/{session}").status_code == 200
    r = client.post(EPISODES, json={"content": "a"}, headers=keyed("gone-with-session"))
    assert r.status_code == 201 and REPLAYED_HEADER not in r.headers
    portal: Any = getattr(client, "portal")  # noqa: B009 -- set while the client runs
    clock.advance(hours=TTL_HOURS + 1)
    assert portal.call(_idempotency(client).purge) >= 1
    assert portal.call(_idempotency(client).purge) == 0


# -- property: retries never duplicate ----------------------------------------------------------
_BODIES = [{"content": "alpha"}, {"content": "beta"}]


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    steps=st.lists(
        st.tuples(st.sampled_from(["send", "wait"]), st.integers(0, 1)), min_size=1, max_size=8
    )
)
def test_any_sequence_of_retries_with_one_key_stores_one_memory(
    client: TestClient, clock: ManualClock, steps: list[tuple[str, int]]
) -> None:
    session = new_session_id("idem-prop")
    headers = keyed("one-key", **{"X-Session-ID": session})
    first: tuple[int, Any] | None = None
    for action, which in steps:
        if action == "wait":  # within the retention window
            clock.advance(minutes=which * 5 + 1)  # 8 waits stay under the 2-hour window
            continue
        r = client.post(EPISODES, json=_BODIES[which], headers=headers)
        if first is None:
            assert r.status_code == 201
            first = (which, r.json())
        elif which == first[0]:
            assert (r.status_code, r.json()) == (201, first[1])
        else:
            assert_envelope(r, 422, "idempotency_key_reused")
    expected = 0 if first is None else 1
    assert held(client, session)["episodes"] == expected
