"""Contract of ``IdempotencyStore``: every backend of the record store runs it."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from uuid import uuid4

import pytest

from tests.factories import T0
from ww.storage import RecordStore
from ww.storage.factory import idempotency_store
from ww.storage.ports.idempotency import (
    Claim,
    ClaimState,
    Horizon,
    IdempotencyStore,
    Reservation,
    StoredAnswer,
)

TTL = timedelta(hours=24)
LOCK = timedelta(minutes=5)
ANSWER = StoredAnswer(201, '{"id": "x"}')


@pytest.fixture
def store(side_records: RecordStore) -> IdempotencyStore:
    return idempotency_store(side_records)


async def claim(
    store: IdempotencyStore,
    token: str,
    *,
    session: str = "s1",
    key: str = "k1",
    fp: str = "fp1",
    minutes: float = 0,
) -> Claim:
    now = T0 + timedelta(minutes=minutes)
    return await store.claim(
        session, key, Reservation(fp, token, now), Horizon(now - TTL, now - LOCK)
    )


async def test_a_claimed_key_is_in_progress_then_answers_once_completed(
    store: IdempotencyStore,
) -> None:
    first = await claim(store, "t1")
    assert first.state is ClaimState.NEW
    second = await claim(store, "t2", fp="fp2")
    assert (second.state, second.fingerprint) == (ClaimState.IN_PROGRESS, "fp1")
    assert await store.complete("s1", "k1", "t1", ANSWER, T0)
    third = await claim(store, "t3", minutes=1)
    assert (third.state, third.fingerprint, third.answer) == (ClaimState.DONE, "fp1", ANSWER)


async def test_keys_are_scoped_by_session(store: IdempotencyStore) -> None:
    assert (await claim(store, "t1")).state is ClaimState.NEW
    assert (await claim(store, "t2", session="s2")).state is ClaimState.NEW
    await store.delete_session("s1")
    assert (await claim(store, "t3")).state is ClaimState.NEW
    assert (await claim(store, "t4", session="s2")).state is ClaimState.IN_PROGRESS


async def test_a_released_key_can_be_claimed_again(store: IdempotencyStore) -> None:
    await claim(store, "t1")
    await store.release("s1", "k1", "wrong-token")  # not its holder: nothing happens
    assert (await claim(store, "t2")).state is ClaimState.IN_PROGRESS
    await store.release("s1", "k1", "t1")
    assert (await claim(store, "t3", fp="fp2")).state is ClaimState.NEW


async def test_stale_reservations_and_expired_answers_count_as_absent(
    store: IdempotencyStore,
) -> None:
    await claim(store, "t1")
    took_over = await claim(store, "t2", fp="fp2", minutes=6)
    assert took_over.state is ClaimState.NEW
    # The first holder finishing late stores nothing: the key is no longer its.
    assert not await store.complete("s1", "k1", "t1", ANSWER, T0)
    assert await store.complete("s1", "k1", "t2", ANSWER, T0 + timedelta(minutes=6))
    kept = await claim(store, "t3", minutes=6 + 24 * 60 - 1)
    assert (kept.state, kept.fingerprint) == (ClaimState.DONE, "fp2")
    assert (await claim(store, "t4", minutes=6 + 24 * 60 + 1)).state is ClaimState.NEW


async def test_purge_deletes_only_expired_answers_and_stale_reservations(
    store: IdempotencyStore,
) -> None:
    await claim(store, "t1", key="old-answer")
    await store.complete("s1", "old-answer", "t1", ANSWER, T0)
    await claim(store, "t2", key="old-reservation")
    await claim(store, "t3", key="fresh-answer", minutes=60)
    await store.complete("s1", "fresh-answer", "t3", ANSWER, T0 + timedelta(minutes=60))
    await claim(store, "t4", key="fresh-reservation", minutes=60)
    cutoff = T0 + timedelta(minutes=30)
    purged = await store.purge(Horizon(cutoff, cutoff))
    assert purged == 2
    assert (await claim(store, "t5", key="old-answer", minutes=61)).state is ClaimState.NEW
    assert (await claim(store, "t6", key="old-reservation", minutes=61)).state is ClaimState.NEW
    assert (await claim(store, "t7", key="fresh-answer", minutes=61)).state is ClaimState.DONE
    fresh = await claim(store, "t8", key="fresh-reservation", minutes=61)
    assert fresh.state is ClaimState.IN_PROGRESS


async def test_of_concurrent_claims_of_one_key_exactly_one_wins(store: IdempotencyStore) -> None:
    claims = await asyncio.gather(*(claim(store, f"t{i}") for i in range(8)))
    assert sorted(c.state for c in claims).count(ClaimState.NEW) == 1


async def test_of_concurrent_takeovers_of_a_stale_key_exactly_one_wins(
    store: IdempotencyStore,
) -> None:
    await claim(store, "t0")
    claims = await asyncio.gather(*(claim(store, f"t{i}", minutes=10) for i in range(1, 9)))
    assert [c.state for c in claims].count(ClaimState.NEW) == 1


async def test_an_answer_round_trips_exactly(store: IdempotencyStore) -> None:
    body = '{"content": "caf\u00e9 \\u2603 \\"quoted\\"", "n": 12345678901234567890}'
    token = str(uuid4())
    await claim(store, token)
    await store.complete("s1", "k1", token, StoredAnswer(200, body), T0)
    got = await claim(store, "other")
    assert got.answer == StoredAnswer(200, body)
