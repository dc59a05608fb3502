"""Several workers meeting a new session at once each create its keyword index.

Neo4j answers all but one of concurrent ``CREATE FULLTEXT INDEX … IF NOT EXISTS`` with
``EquivalentSchemaRuleAlreadyExists``; that used to reach the client as a 500 on the first
writes to a new session when several API workers served it (found by bench/soak.py).
"""

from __future__ import annotations

import asyncio
from uuid import uuid4

from tests.neo4j_launcher import Neo4jProcess
from ww.storage.neo4j.records import Neo4jRecordStore

WORKERS = 6
ROUNDS = 5


async def test_concurrent_creations_of_one_keyword_index_all_succeed(
    neo4j_server: Neo4jProcess,
) -> None:
    # One store (one driver) per worker, as each API worker process has its own.
    stores = [Neo4jRecordStore(neo4j_server.uri) for _ in range(WORKERS)]
    for store in stores:
        await store.open()
    created: list[str] = []
    try:
        for _ in range(ROUNDS):
            suffix = uuid4().hex
            index, label = f"ww_fts_race_{suffix}", f"WwRace_{suffix}"
            created.append(index)
            await asyncio.gather(
                *(store.ensure_fulltext(index, label, "content_fts") for store in stores)
            )
            assert all([await store.fulltext_online(index) for store in stores])
    finally:
        for index in created:
            await stores[0].drop_fulltext(index)
        for store in stores:
            await store.close()
