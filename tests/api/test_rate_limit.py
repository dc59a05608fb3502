"""Rate limiting (``api_rate_limiting``, ``WW_RATE_LIMIT``): per caller and route group, with
its headers, the 429 in the error envelope, the in-memory and the Redis backends, and a real
redis-server stopped and started again under a running app.

Limits are per hour, so a window never turns over within a test: every count is exact.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from limits import parse
from limits.aio.storage import MemoryStorage

from tests.api.helpers import assert_envelope, running_client, scratch_dir
from tests.conftest import ManualClock
from tests.factories import HashEmbedder
from tests.redis_server import RedisProcess
from ww.api import create_app
from ww.api.ratelimit import (
    CircuitGate,
    RateLimiter,
    RedisHealth,
    build_rate_limiter,
    per_worker_warning,
    route_group,
    route_groups,
)
from ww.config import ConfigError, Settings, load_settings
from ww.control.circuits import Breaker, CircuitState
from ww.control.flags import Flags

SESSION = {"X-Session-ID": "limited"}
LIST = "/api/v1/episodes"
KEY_A = "ww_rate-limit-key-a-0000000000"
KEY_B = "ww_rate-limit-key-b-0000000000"


@pytest.fixture
def data_dir() -> Iterator[Path]:
    with scratch_dir("ww-rate-") as tmp:
        yield tmp / "data"


def _client(data_dir: Path, **settings: Any) -> Any:
    return running_client(data_dir, HashEmbedder(), ManualClock(), **settings)


def _get(client: TestClient, path: str = LIST, **headers: str) -> Any:
    return client.get(path, headers={**SESSION, **headers})


def _limit_headers(r: Any) -> tuple[int, int, int]:
    return (
        int(r.headers["x-ratelimit-limit"]),
        int(r.headers["x-ratelimit-remaining"]),
        int(r.headers["x-ratelimit-reset"]),
    )


def test_headers_count_down_then_429_with_retry_after(data_dir: Path) -> None:
    with _client(data_dir, rate_limit="5/hour") as client:
        seen = [_get(client) for _ in range(5)]
        assert [r.status_code for r in seen] == [200] * 5
        counts = [_limit_headers(r) for r in seen]
        assert [c[:2] for c in counts] == [(5, 4), (5, 3), (5, 2), (5, 1), (5, 0)]
        # Epoch seconds: the first counted request leaves the window an hour after it came.
        resets = {c[2] for c in counts}
        assert len(resets) == 1 and resets.pop() > time.time()

        refused = _get(client)
        assert_envelope(refused, 429, "rate_limited")
        assert _limit_headers(refused)[:2] == (5, 0)
        assert 1 <= int(refused.headers["retry-after"]) <= 3600
        assert "episodes" in refused.json()["error"]["message"]

        # Another route group keeps its own budget; the exempt routes are never counted.
        other = client.get("/api/v1/entities", headers=SESSION)
        assert other.status_code != 429 and _limit_headers(other)[:2] == (5, 4)
        for path in ("/api/v1/health", "/", "/openapi.json", "/docs"):
            r = client.get(path)
            assert r.status_code == 200, path
            assert "x-ratelimit-limit" not in r.headers, path


def test_every_router_of_the_app_is_a_group_of_its_own(data_dir: Path) -> None:
    with _client(data_dir, rate_limit="1/hour") as client:
        recall = {"query": "anything"}
        assert client.post("/api/v1/recall", json=recall, headers=SESSION).status_code == 200
        refused = client.post("/api/v1/recall", json=recall, headers=SESSION)
        assert_envelope(refused, 429, "rate_limited")
        assert "recall" in refused.json()["error"]["message"]
        # Unknown paths share the group `other`, not unified recall's budget.
        assert client.get("/api/v1/nothing-here", headers=SESSION).status_code == 404
        assert _get(client).status_code == 200


def test_each_key_has_its_own_budget_and_the_429_names_no_key(data_dir: Path) -> None:
    keys = json.dumps([{"id": "agent-a", "key": KEY_A}, {"id": "agent-b", "key": KEY_B}])
    with _client(data_dir, rate_limit="3/hour", api_keys=keys) as client:
        assert [_get(client, **{"X-API-Key": KEY_A}).status_code for _ in range(3)] == [200] * 3
        refused = _get(client, **{"X-API-Key": KEY_A})
        assert_envelope(refused, 429, "rate_limited")
        assert KEY_A not in refused.text and KEY_A not in str(refused.headers)
        # B is untouched by A's requests, and then spent on its own.
        got_b = [_get(client, **{"X-API-Key": KEY_B}) for _ in range(4)]
        assert [r.status_code for r in got_b] == [200, 200, 200, 429]
        assert _limit_headers(got_b[0])[:2] == (3, 2)
        # An anonymous caller is refused by auth (outside the limiter), not counted.
        assert _get(client).status_code == 401


def test_flag_off_means_no_limit_and_no_headers(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WW_FLAG_API_RATE_LIMITING", "false")
    with _client(data_dir, rate_limit="2/hour") as client:
        got = [_get(client) for _ in range(5)]
        assert [r.status_code for r in got] == [200] * 5
        assert all("x-ratelimit-limit" not in r.headers for r in got)


def test_the_flag_is_read_on_every_request(data_dir: Path) -> None:
    with _client(data_dir, rate_limit="2/hour") as client:
        engine = client.app.state.engine  # type: ignore[attr-defined]
        assert [_get(client).status_code for _ in range(3)] == [200, 200, 429]
        engine.flags = engine.flags.model_copy(update={"api_rate_limiting": False})
        r = _get(client)
        assert r.status_code == 200 and "x-ratelimit-limit" not in r.headers
        engine.flags = engine.flags.model_copy(update={"api_rate_limiting": True})
        assert _get(client).status_code == 429


def test_redis_backend_shares_one_limit_between_apps(data_dir: Path, redis_url: str) -> None:
    redis = {"rate_limit": "5/hour", "rate_limiter_backend": "redis", "redis_url": redis_url}
    with (
        _client(data_dir / "a", **redis) as a,
        _client(data_dir / "b", **redis) as b,
    ):
        got = [_get(c) for c in (a, b, a, b, a, b, a)]
        assert [r.status_code for r in got] == [200] * 5 + [429, 429]
        assert [_limit_headers(r)[1] for r in got] == [4, 3, 2, 1, 0, 0, 0]


def _outage_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "ww.api.ratelimit" and "cannot be reached" in r.getMessage()
    ]


def test_redis_down_fails_open_warns_once_and_recovers(
    data_dir: Path, own_redis: RedisProcess, caplog: pytest.LogCaptureFixture
) -> None:
    settings = {
        "rate_limit": "2/hour",
        "rate_limiter_backend": "redis",
        "redis_url": own_redis.url,
        "redis_retry_s": 0.0,  # every request tries Redis again: no waiting in the test
    }
    with _client(data_dir, **settings) as client, caplog.at_level(logging.INFO):
        assert [_get(client).status_code for _ in range(3)] == [200, 200, 429]
        own_redis.stop()
        down = [_get(client) for _ in range(4)]
        assert [r.status_code for r in down] == [200] * 4
        assert all("x-ratelimit-limit" not in r.headers for r in down)
        warned = _outage_warnings(caplog)
        assert len(warned) == 1, warned
        assert f"127.0.0.1:{own_redis.port}" in warned[0]

        own_redis.start()  # same port, empty: the counts start again
        back = [_get(client) for _ in range(3)]
        assert [r.status_code for r in back] == [200, 200, 429]
        assert _limit_headers(back[0])[1] == 1
        assert any("reachable again" in r.getMessage() for r in caplog.records)


def test_redis_down_fails_closed_with_503(data_dir: Path, own_redis: RedisProcess) -> None:
    settings = {
        "rate_limit": "5/hour",
        "rate_limiter_backend": "redis",
        "redis_url": own_redis.url,
        "redis_retry_s": 0.0,
        "rate_limit_redis_down": "closed",
    }
    with _client(data_dir, **settings) as client:
        assert _get(client).status_code == 200
        own_redis.stop()
        refused = _get(client)
        error = assert_envelope(refused, 503, "service_unavailable")
        assert "WW_RATE_LIMIT_REDIS_DOWN=closed" in error["message"]
        assert int(refused.headers["retry-after"]) >= 1
        assert client.get("/api/v1/health").status_code == 200  # exempt: never refused
        own_redis.start()
        assert _get(client).status_code == 200


def _redis_circuit(client: TestClient) -> str:
    state: str = client.get("/api/v1/control/circuits/redis").json()["state"]
    return state


def test_redis_down_opens_the_redis_circuit_which_paces_the_tries(
    data_dir: Path, own_redis: RedisProcess
) -> None:
    clock = ManualClock()
    settings = {
        "rate_limit": "3/hour",
        "rate_limiter_backend": "redis",
        "redis_url": own_redis.url,
        "redis_retry_s": 60.0,
    }
    with running_client(data_dir, HashEmbedder(), clock, **settings) as client:
        assert _get(client).status_code == 200
        assert _redis_circuit(client) == "closed"
        own_redis.stop()
        assert _get(client).status_code == 200  # fails open
        assert _redis_circuit(client) == "open"
        assert client.get("/api/v1/health").json()["circuits"]["redis"] == "open"

        own_redis.start()  # back, but the open circuit keeps the policy until its timeout
        assert "x-ratelimit-limit" not in _get(client).headers
        assert _redis_circuit(client) == "open"
        clock.advance(seconds=61)
        first = _get(client)  # half-open: this request is the trial, Redis answers
        assert _limit_headers(first)[1] == 2
        assert _redis_circuit(client) == "closed"

        own_redis.stop()
        _get(client)
        assert _redis_circuit(client) == "open"
        own_redis.start()
        # An operator who knows Redis is back closes the circuit without waiting.
        reset = client.post("/api/v1/control/circuits/redis", json={"action": "reset"})
        assert reset.status_code == 200 and reset.json()["state"] == "closed"
        assert _limit_headers(_get(client))[1] == 2  # a fresh Redis: the count starts again


def test_redis_password_never_reaches_the_log(
    data_dir: Path, own_redis: RedisProcess, caplog: pytest.LogCaptureFixture
) -> None:
    own_redis.stop()  # a Redis that is down, named by a URL with a password
    url = f"redis://:a-redis-password-1234@127.0.0.1:{own_redis.port}/0"
    settings = {"rate_limiter_backend": "redis", "redis_url": url, "redis_retry_s": 0.0}
    with caplog.at_level(logging.DEBUG), _client(data_dir, **settings) as client:
        assert _get(client).status_code == 200
    assert _outage_warnings(caplog)
    assert f"counted in Redis at redis://127.0.0.1:{own_redis.port}," in caplog.text
    assert "a-redis-password-1234" not in caplog.text


def test_health_paces_its_tries_and_tells_listeners() -> None:
    now = [100.0]
    health = RedisHealth("redis://127.0.0.1:1", retry_s=5.0, clock=lambda: now[0])
    changes: list[bool] = []
    health.listeners.append(changes.append)
    assert health.allow()
    health.on_failure(ConnectionError("refused"))
    health.on_failure(ConnectionError("refused"))  # still the same outage
    assert changes == [False] and not health.available
    assert not health.allow()
    now[0] += 5.0
    assert health.allow()  # one request tries again ...
    assert not health.allow()  # ... and the others do not pile on meanwhile
    health.on_success()
    assert changes == [False, True] and health.allow()


def test_route_groups() -> None:
    groups = route_groups(["/api/v1/episodes/{id}", "/api/v1/skills", "/api/v1/health", "/"])
    assert groups == frozenset({"episodes", "skills"})
    assert route_group("/api/v1/episodes/123/mark-important", groups) == "episodes"
    assert route_group("/api/v1/made-up-path", groups) == "other"
    assert route_group("/api/v1/health", groups) is None
    assert route_group("/static/docs/swagger-ui.css", groups) is None


def test_openapi_documents_the_429() -> None:
    cfg = Settings(_env_file=None, data_dir="/nonexistent/ww-rate", environment="test")  # type: ignore[arg-type]
    paths = create_app(cfg).openapi()["paths"]
    assert "429" in paths["/api/v1/episodes"]["get"]["responses"]
    assert "429" not in paths["/api/v1/health"]["get"]["responses"]


@pytest.mark.parametrize("value", ["lots", "100/fortnight", "1/second;100/minute", "0x/s"])
def test_a_bad_limit_stops_start_up_naming_the_variable(
    value: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("WW_RATE_LIMIT", value)
    with pytest.raises(ConfigError, match="WW_RATE_LIMIT="):
        load_settings()


def test_redis_backend_needs_a_redis_url(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("WW_RATE_LIMITER_BACKEND", "redis")
    with pytest.raises(ConfigError, match="needs WW_REDIS_URL"):
        load_settings()
    monkeypatch.setenv("WW_REDIS_URL", "http://:hunter2-password@127.0.0.1:6379")
    with pytest.raises(ConfigError) as info:
        load_settings()
    assert "WW_REDIS_URL=<hidden>" in str(info.value)
    assert "hunter2" not in str(info.value)


def test_flags_default_limits_on() -> None:
    assert Flags.model_fields["api_rate_limiting"].default is True
    assert Settings.model_fields["rate_limit"].default == "100/minute"


def test_several_workers_with_the_memory_backend_are_warned_about() -> None:
    def settings(**kw: Any) -> Settings:
        return Settings(_env_file=None, data_dir="/nonexistent/ww-rate", **kw)  # type: ignore[arg-type]

    warning = per_worker_warning(settings(api_workers=4, rate_limit="100/minute"), True)
    assert warning is not None and "4 times as many" in warning
    assert per_worker_warning(settings(api_workers=4), False) is None  # flag off
    assert per_worker_warning(settings(api_workers=1), True) is None
    shared = settings(
        api_workers=4, rate_limiter_backend="redis", redis_url="redis://127.0.0.1:6379/0"
    )
    assert per_worker_warning(shared, True) is None


class GateForTest:
    """A HealthGate as the control plane's breaker would be: it decides, and hears."""

    def __init__(self) -> None:
        self.open = True
        self.heard: list[str] = []

    def admit(self) -> int | None:
        return 0 if self.open else None

    def release(self, token: int) -> None:
        self.heard.append("released")

    def on_success(self) -> None:
        self.heard.append("success")

    def on_failure(self, exc: BaseException) -> None:
        self.heard.append(type(exc).__name__)


async def test_a_given_health_gate_decides_and_hears(own_redis: RedisProcess) -> None:
    gate = GateForTest()
    cfg = Settings(
        _env_file=None,  # type: ignore[call-arg]
        data_dir="/nonexistent/ww-rate",  # type: ignore[arg-type]
        rate_limit="5/hour",
        rate_limiter_backend="redis",  # type: ignore[arg-type]
        redis_url=own_redis.url,  # type: ignore[arg-type]
    )
    limiter = build_rate_limiter(cfg, health=gate)
    limiter.open()
    try:
        gate.open = False  # an open breaker: Redis is not asked at all
        assert await limiter.hit("episodes", "key:a") is None
        with own_redis.client() as direct:
            assert direct.dbsize() == 0
        gate.open = True
        decision = await limiter.hit("episodes", "key:a")
        assert decision is not None and decision.remaining == 4
        own_redis.stop()
        assert await limiter.hit("episodes", "key:a") is None
        assert gate.heard[0] == "success" and gate.heard[1] == "StorageError"
    finally:
        await limiter.close()


class HangingStorage(MemoryStorage):
    """The in-memory storage with a count that never answers, so a request can be
    cancelled while its call waits (against a real Redis that never answers, the client
    reports the cancel inside its read as a ``StorageError``, which counts as a failure)."""

    async def acquire_entry(self, *args: Any, **kwargs: Any) -> bool:
        self.entered.set()
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    def __init__(self) -> None:
        super().__init__()
        self.entered = asyncio.Event()


async def test_a_cancelled_limiter_call_frees_the_circuits_trial() -> None:
    """A request cancelled while its storage call (the half-open trial) is under way hands
    the trial back, so the next request may try Redis rather than none ever again."""
    clock = ManualClock()
    breaker = Breaker("redis", threshold=1, reset_timeout=5, clock=clock)
    storage = HangingStorage()
    gate = CircuitGate(breaker, RedisHealth("redis://127.0.0.1:1", retry_s=5.0))
    limiter = RateLimiter(parse("5/hour"), lambda: storage, gate)
    breaker.record_failure()
    clock.advance(seconds=5)
    hit = asyncio.create_task(limiter.hit("episodes", "key:a"))
    await asyncio.wait_for(storage.entered.wait(), timeout=30)
    assert breaker.state is CircuitState.HALF_OPEN and breaker.admit() is None
    hit.cancel()
    with pytest.raises(asyncio.CancelledError):
        await hit
    assert breaker.state is CircuitState.HALF_OPEN
    assert breaker.admit()  # the trial is free again
