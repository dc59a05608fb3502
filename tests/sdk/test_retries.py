"""Retries and error mapping in detail, on httpx's own ``MockTransport``: a server that
answers 429 or 503 on demand, or drops the connection, cannot be had for real here (a store
outage cannot be timed to one request; the real rate limiter's 429 is in
``test_rate_limit.py``). The waits go through ``time.sleep`` / ``asyncio.sleep``, which
these tests record instead of sleeping."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.factories import make_episode
from ww.sdk import (
    APIConnectionError,
    AsyncWorldWeaver,
    InsufficientStorageError,
    RateLimitedError,
    Retries,
    ServerError,
    UnavailableError,
    WorldWeaver,
    _core,
)

EPISODE = make_episode().model_dump(mode="json")
HEALTH = {"status": "ok", "version": "0", "components": {}, "worker_pid": 1}


def envelope(status: int, code: str, headers: dict[str, str] | None = None) -> httpx.Response:
    body = {"error": {"code": code, "message": f"said {status}", "request_id": f"rid-{status}"}}
    return httpx.Response(status, json=body, headers=headers)


class Script:
    """Answers each request with the next of ``answers`` (a response, or an exception to
    raise as a transport would) and keeps the requests."""

    def __init__(self, *answers: httpx.Response | Exception) -> None:
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer


@pytest.fixture
def slept(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    waits: list[float] = []
    monkeypatch.setattr(_core.time, "sleep", waits.append)

    async def asleep(seconds: float) -> None:
        waits.append(seconds)

    monkeypatch.setattr(_core.asyncio, "sleep", asleep)
    return waits


def sync_client(script: Script, **options: Any) -> WorldWeaver:
    return WorldWeaver("http://127.0.0.1:1", transport=httpx.MockTransport(script), **options)


def episode() -> httpx.Response:
    return httpx.Response(201, json=EPISODE)


def test_a_429_is_retried_after_the_servers_retry_after(slept: list[float]) -> None:
    script = Script(envelope(429, "rate_limited", {"Retry-After": "1.5"}), episode())
    with sync_client(script) as ww:
        assert str(ww.episodes.create(content="x").id) == EPISODE["id"]
    assert slept == [1.5]
    keys = {r.headers["Idempotency-Key"] for r in script.requests}
    assert len(script.requests) == 2 and len(keys) == 1  # one logical create, one key


def test_a_503_on_a_create_is_retried_with_the_same_key(slept: list[float]) -> None:
    script = Script(envelope(503, "service_unavailable"), envelope(503, "x"), episode())
    with sync_client(script, retries=Retries(max_retries=2, backoff=0.5)) as ww:
        ww.episodes.create(content="x")
    assert len({r.headers["Idempotency-Key"] for r in script.requests}) == 1
    # Without Retry-After: exponential backoff with jitter, in [ceiling/2, ceiling].
    assert 0.25 <= slept[0] <= 0.5 and 0.5 <= slept[1] <= 1.0


def test_each_create_call_gets_its_own_key() -> None:
    script = Script(episode(), episode())
    with sync_client(script) as ww:
        ww.episodes.create(content="x")
        ww.episodes.create(content="x")
    assert len({r.headers["Idempotency-Key"] for r in script.requests}) == 2


def test_retries_run_out_into_the_typed_error(slept: list[float]) -> None:
    script = Script(*(envelope(503, "service_unavailable") for _ in range(3)))
    with sync_client(script, retries=2) as ww, pytest.raises(UnavailableError) as caught:
        ww.episodes.get(EPISODE["id"])
    assert len(script.requests) == 3 and len(slept) == 2
    assert (caught.value.code, caught.value.request_id) == ("service_unavailable", "rid-503")
    assert isinstance(caught.value, ServerError)


def test_a_retry_after_beyond_the_cap_is_raised_at_once(slept: list[float]) -> None:
    script = Script(envelope(429, "rate_limited", {"Retry-After": "3600"}))
    with sync_client(script) as ww, pytest.raises(RateLimitedError) as caught:
        ww.episodes.list()
    assert caught.value.retry_after == 3600 and slept == []


def test_a_507_is_not_retried(slept: list[float]) -> None:
    script = Script(envelope(507, "insufficient_storage"))
    with sync_client(script) as ww, pytest.raises(InsufficientStorageError):
        ww.episodes.create(content="x")
    assert len(script.requests) == 1 and slept == []


def test_a_lost_connection_is_retried_only_when_repeatable(slept: list[float]) -> None:
    lost = httpx.ConnectError("refused")
    script = Script(lost, httpx.Response(200, json=EPISODE))
    with sync_client(script) as ww:
        ww.episodes.get(EPISODE["id"])  # a GET: retried
    assert len(script.requests) == 2
    # A PATCH carries no key and is not idempotent by its method: raised, not repeated.
    script = Script(lost)
    with sync_client(script) as ww, pytest.raises(APIConnectionError):
        ww.episodes.update(EPISODE["id"], content="y")
    assert len(script.requests) == 1


def test_a_503_on_a_request_without_a_key_is_not_retried(slept: list[float]) -> None:
    script = Script(envelope(503, "service_unavailable"))
    with sync_client(script) as ww, pytest.raises(UnavailableError):
        ww.episodes.update(EPISODE["id"], content="y")
    assert len(script.requests) == 1


def test_an_error_without_an_envelope_keeps_its_status() -> None:
    script = Script(httpx.Response(502, text="<html>bad gateway</html>"))
    with sync_client(script, retries=0) as ww, pytest.raises(ServerError) as caught:
        ww.health()
    assert (caught.value.status_code, caught.value.code) == (502, "error")


def test_health_reads_a_503_as_the_report() -> None:
    script = Script(httpx.Response(503, json={**HEALTH, "status": "unavailable"}))
    with sync_client(script) as ww:
        assert ww.health().status == "unavailable"


def test_credentials_and_session_travel_as_headers() -> None:
    script = Script(*(httpx.Response(200, json=HEALTH) for _ in range(3)))
    with sync_client(script, api_key="k1", session_id="s1") as ww:
        ww.health()
        ww.session("s2").with_credentials(token="t").health()
        ww.with_credentials(admin_key="a").health()
    first, second, third = (r.headers for r in script.requests)
    assert (first["X-API-Key"], first["X-Session-ID"]) == ("k1", "s1")
    assert (second["Authorization"], second["X-Session-ID"]) == ("Bearer t", "s2")
    assert "X-API-Key" not in second and "Authorization" not in third
    assert (third["X-Admin-Key"], third["X-Session-ID"]) == ("a", "s1")


def test_bodies_accept_models_and_fields() -> None:
    from ww.models import EpisodeCreate

    script = Script(episode())
    with sync_client(script) as ww:
        ww.episodes.create(EpisodeCreate(content="x", speaker="me"), importance=0.7)
    assert json.loads(script.requests[0].content) == {
        "content": "x",
        "speaker": "me",
        "importance": 0.7,
    }


async def test_the_async_client_retries_alike(slept: list[float]) -> None:
    script = Script(envelope(429, "rate_limited", {"Retry-After": "2"}), episode())
    transport = httpx.MockTransport(script)
    async with AsyncWorldWeaver("http://127.0.0.1:1", transport=transport) as ww:
        await ww.episodes.create(content="x")
    assert slept == [2.0] and len(script.requests) == 2


@given(
    attempt=st.integers(0, 10),
    backoff=st.floats(0.01, 5),
    cap=st.floats(0.01, 60),
    server=st.none() | st.floats(0, 120),
)
def test_delays_stay_within_the_rules(
    attempt: int, backoff: float, cap: float, server: float | None
) -> None:
    rules = Retries(max_retries=5, backoff=backoff, max_backoff=cap, max_retry_after=60)
    wait = rules.delay(attempt, server)
    if attempt >= 5 or (server is not None and server > 60):
        assert wait is None
    elif server is not None:
        assert wait == server
    else:
        assert wait is not None and 0 < wait <= min(cap, backoff * 2**attempt)
