"""The test Redis's own rule: CI must run the Redis tests, a developer without it skips them."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.redis_server import RedisProcess, redis_binary


def test_missing_redis_server_fails_under_ci(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # a PATH without redis-server
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI must run the Redis tests"):
        redis_binary()
    monkeypatch.setenv("CI", "false")
    with pytest.raises(pytest.skip.Exception, match="redis-server is not installed"):
        redis_binary()


def test_started_server_answers_and_stops(own_redis: RedisProcess) -> None:
    with own_redis.client() as client:
        assert client.set("k", "v") and client.get("k") == b"v"
    own_redis.stop()
    own_redis.start()  # same port, nothing kept
    with own_redis.client() as client:
        assert client.get("k") is None
