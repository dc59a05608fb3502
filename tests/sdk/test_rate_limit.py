"""The SDK against the real rate limiter (``WW_RATE_LIMIT``) of a real server on a loopback
port: the 429, its ``Retry-After`` and the client's rule for it. The waits go through
``SyncIO.sleep``, which these tests record instead of sleeping (the server's own clock and
sleeps are left alone); ``tests/sdk/test_retries.py`` covers the timing rules in detail."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi import FastAPI

from tests.sdk.conftest import SESSION
from tests.sdk.server import make_app, serve
from ww.config import Settings
from ww.embedding import EmbeddingService
from ww.sdk import RateLimitedError, Retries, WorldWeaver

LIMIT = 3


@pytest.fixture
def url(settings: Settings, embedding_service: EmbeddingService) -> Iterator[str]:
    app: FastAPI = make_app(settings, embedding_service, rate_limit=f"{LIMIT}/minute")
    with serve(app) as address:
        yield address


def use_up_the_limit(ww: WorldWeaver) -> None:
    for _ in range(LIMIT):
        ww.episodes.list()


def test_without_retries_the_429_is_raised_with_its_retry_after(
    url: str, slept: list[float]
) -> None:
    with WorldWeaver(url, session_id=SESSION, retries=0) as ww:
        use_up_the_limit(ww)
        with pytest.raises(RateLimitedError) as caught:
            ww.episodes.list()
    error = caught.value
    assert (error.status_code, error.code) == (429, "rate_limited")
    assert error.retry_after is not None and 1 <= error.retry_after <= 60
    assert slept == []


def test_a_retry_after_beyond_max_retry_after_is_raised_at_once(
    url: str, slept: list[float]
) -> None:
    rules = Retries(max_retries=5, max_retry_after=1.0)
    with WorldWeaver(url, session_id=SESSION, retries=rules) as ww:
        use_up_the_limit(ww)
        with pytest.raises(RateLimitedError) as caught:
            ww.episodes.create(content="one write too many")
    assert caught.value.retry_after is not None and caught.value.retry_after > 1.0
    assert slept == []  # not waited for: the window frees in about a minute


def test_a_retry_after_within_the_rules_is_waited_for_then_retried(
    url: str, slept: list[float]
) -> None:
    rules = Retries(max_retries=2, max_retry_after=120.0)
    with WorldWeaver(url, session_id=SESSION, retries=rules) as ww:
        use_up_the_limit(ww)
        with pytest.raises(RateLimitedError) as caught:
            ww.episodes.list()
    # Two waits, each the server's Retry-After; no time passed (the sleeps were recorded),
    # so every retry met the limit again and the last 429 is raised.
    assert len(slept) == 2 and all(1 <= s <= 60 for s in slept)
    assert caught.value.retry_after is not None and 1 <= caught.value.retry_after <= 60


def test_the_limit_is_per_route_group(url: str, slept: list[float]) -> None:
    with WorldWeaver(url, session_id=SESSION, retries=0) as ww:
        use_up_the_limit(ww)
        assert ww.entities.list().items == []
        assert ww.health().status == "ok"  # health is never limited
