"""The Neo4j record store's recall and listing reads do work bounded by what they return.

At 100,000 episodes in a session, a neighbour lookup that sorted the session's timeline
per key took 1.6 s and a keyword search that sorted every match 62 ms (docs/benchmarks.md).
Time is not asserted here; the rows each query plan operator produced are (Neo4j's
PROFILE, the same for the same plan on every machine): they must not grow with the session.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any
from unittest.mock import patch

import pytest
from neo4j import GraphDatabase

from tests.factories import at, make_episode
from tests.neo4j_launcher import Neo4jProcess, wipe_database
from ww.models import EpisodeFilter
from ww.storage.neo4j.records import Neo4jRecordStore

SESSION = "work"
SIZE = 1500  # several times every bound below, so a read of the session cannot pass


@pytest.fixture
async def store(neo4j_server: Neo4jProcess) -> AsyncIterator[Neo4jRecordStore]:
    wipe_database(neo4j_server.uri)
    records = Neo4jRecordStore(neo4j_server.uri)
    await records.open()
    # Every episode says "memory": a keyword search for it matches the whole session. A
    # second session, later in the index's order, catches a read that walks the index
    # from its end instead of seeking the session.
    for session in (SESSION, "zz-" + SESSION):
        episodes = [
            make_episode(session, content=f"memory number {i}", timestamp=at(i))
            for i in range(SIZE)
        ]
        for start in range(0, SIZE, 500):
            await records.insert_episodes(session, episodes[start : start + 500])
    yield records
    await records.close()


def _operators(plan: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield plan
    for child in plan.get("children", []):
        yield from _operators(child)


def _most_rows(uri: str, query: str, params: dict[str, Any]) -> int:
    """The most rows any operator of ``query``'s profiled plan produced."""
    with GraphDatabase.driver(uri, auth=None) as driver, driver.session() as session:
        # The slotted runtime pulls rows one at a time, so a LIMIT stops the reads under it
        # at once; the default (pipelined) one reads in batches whatever the plan.
        profiled = "CYPHER runtime=slotted PROFILE " + query
        summary = session.run(profiled, params).consume()
    assert summary.profile is not None
    return max(int(op.get("rows", 0)) for op in _operators(summary.profile))


async def _queries(store: Neo4jRecordStore, call: Any) -> list[tuple[str, dict[str, Any]]]:
    """The Cypher ``call`` sends through the store, with its parameters."""
    sent: list[tuple[str, dict[str, Any]]] = []

    def spy(real: Any) -> Any:
        async def run(query: str, params: dict[str, Any]) -> list[dict[str, Any]]:
            sent.append((query, params))
            return list(await real(query, params))

        return run

    # Reads of many rows go through ``listed_rows``, the others through ``_rows``.
    with (
        patch.object(store, "_rows", autospec=True, side_effect=spy(store._rows)),
        patch.object(store, "listed_rows", autospec=True, side_effect=spy(store.listed_rows)),
    ):
        await call()
    assert sent
    return sent


async def test_neighbours_read_a_few_index_entries_per_key(
    store: Neo4jRecordStore, neo4j_server: Neo4jProcess
) -> None:
    every = EpisodeFilter()
    page = await store.list_episodes(SESSION, every, 1000, None)
    picked = [page.items[i].id for i in (10, 400, 900)]  # early, middle and late turns
    rows = await store.candidate_rows(SESSION, picked, every)
    near: dict[Any, Any] = {}

    async def look() -> None:
        near.update(await store.neighbours(SESSION, list(rows.values())))

    ((query, params),) = await _queries(store, look)
    assert all(len(n) == 2 for n in near.values())
    # Old plan: each key read every entry before (or after) it, hundreds here.
    assert _most_rows(neo4j_server.uri, query, params) <= 4 * len(picked)


async def test_a_listing_page_reads_about_the_page(
    store: Neo4jRecordStore, neo4j_server: Neo4jProcess
) -> None:
    async def first_page() -> None:
        page = await store.list_episodes(SESSION, EpisodeFilter(), 20, None)
        assert [e.content for e in page.items][:2] == [
            f"memory number {SIZE - 1}",
            f"memory number {SIZE - 2}",
        ]

    ((query, params),) = await _queries(store, first_page)
    assert _most_rows(neo4j_server.uri, query, params) <= 21 + 1


async def test_a_later_listing_page_seeks_its_cursor(
    store: Neo4jRecordStore, neo4j_server: Neo4jProcess
) -> None:
    first = await store.list_episodes(SESSION, EpisodeFilter(), 700, None)

    async def next_page() -> None:
        page = await store.list_episodes(SESSION, EpisodeFilter(), 20, first.next_cursor)
        assert page.items[0].content == f"memory number {SIZE - 701}"

    ((query, params),) = await _queries(store, next_page)
    assert _most_rows(neo4j_server.uri, query, params) <= 21 + 1


async def test_a_keyword_search_reads_its_limit_and_a_margin_not_every_match(
    store: Neo4jRecordStore, neo4j_server: Neo4jProcess
) -> None:
    found: list[Any] = []

    async def search() -> None:
        found.extend(await store.keyword_search(SESSION, "memory", EpisodeFilter(), 5))

    sent = await _queries(store, search)
    assert len(found) == 5
    query, params = next((q, p) for q, p in sent if "fulltext.queryNodes" in q)
    # Every episode matches; the search reads its limit and the tie margin, no more.
    assert _most_rows(neo4j_server.uri, query, params) <= 5 + 100
