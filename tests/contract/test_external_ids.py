"""Contract of ``RecordStore.insert_new_external``: creates that must not repeat an
``external_id``, on every record backend."""

from __future__ import annotations

import asyncio

from tests.factories import make_episode
from ww.models import EpisodeFilter
from ww.storage import RecordStore


async def _count(records: RecordStore, session: str) -> int:
    return len((await records.list_episodes(session, EpisodeFilter(), 200, None)).items)


async def test_only_new_external_ids_are_inserted(records: RecordStore) -> None:
    await records.ensure_session("s1", make_episode().ingested_at)
    old = make_episode(external_id="a")
    await records.insert_episodes("s1", [old])
    dup = make_episode(external_id="a")
    fresh = make_episode(external_id="b")
    plain = make_episode()  # no external_id: always new
    known = await records.insert_new_external("s1", [dup, fresh, plain], all_or_nothing=False)
    assert known == {"a": old.id}
    assert await records.get_episode("s1", dup.id) is None
    assert await records.get_episode("s1", fresh.id) is not None
    assert await records.get_episode("s1", plain.id) is not None
    # keyword search follows the rows that were inserted
    assert {h.id for h in await records.keyword_search("s1", "hello", EpisodeFilter(), 10)} == {
        old.id,
        fresh.id,
        plain.id,
    }


async def test_all_or_nothing_inserts_none_when_one_is_known(records: RecordStore) -> None:
    await records.ensure_session("s1", make_episode().ingested_at)
    old = make_episode(external_id="a")
    await records.insert_episodes("s1", [old])
    known = await records.insert_new_external(
        "s1", [make_episode(external_id="b"), make_episode(external_id="a")], all_or_nothing=True
    )
    assert known == {"a": old.id}
    assert await _count(records, "s1") == 1


async def test_external_ids_of_another_session_do_not_count(records: RecordStore) -> None:
    for s in ("s1", "s2"):
        await records.ensure_session(s, make_episode().ingested_at)
    await records.insert_episodes("s2", [make_episode("s2", external_id="a")])
    mine = make_episode("s1", external_id="a")
    assert await records.insert_new_external("s1", [mine], all_or_nothing=False) == {}
    assert await records.get_episode("s1", mine.id) is not None


async def test_concurrent_creates_of_one_external_id_store_one(records: RecordStore) -> None:
    await records.ensure_session("s1", make_episode().ingested_at)
    tries = [make_episode(external_id="once") for _ in range(6)]
    answers = await asyncio.gather(
        *(records.insert_new_external("s1", [ep], all_or_nothing=True) for ep in tries)
    )
    assert sum(a == {} for a in answers) == 1
    assert await _count(records, "s1") == 1
    winner = next(ep for ep, a in zip(tries, answers, strict=True) if a == {})
    assert all(a == {"once": winner.id} for a in answers if a)
