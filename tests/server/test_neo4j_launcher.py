"""The test launcher's page cache: small by default, the deployment's size when asked.

Benchmarks of 100,000 memories (bench/server_recall.py, bench/hnsw_options.py) start it with
docker-compose.yml's 512 MB; with the tests' 64 MB every vector read went through evictions.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from neo4j import GraphDatabase

from tests.neo4j_launcher import Neo4jProcess, launcher_jar

pytestmark = pytest.mark.slow


def _page_cache(uri: str) -> str:
    with GraphDatabase.driver(uri, auth=None) as driver:
        records, _, _ = driver.execute_query(
            "SHOW SETTINGS YIELD name, value WHERE name = 'server.memory.pagecache.size' "
            "RETURN value"
        )
    return str(records[0]["value"])


def test_the_launcher_sizes_its_page_cache(neo4j_server: Neo4jProcess, tmp_path: Path) -> None:
    assert neo4j_server.page_cache_mb is None
    assert _page_cache(neo4j_server.uri).startswith("64")
    sized = Neo4jProcess(launcher_jar(), tmp_path / "neo4j-home", page_cache_mb=96)
    sized.start()
    try:
        assert _page_cache(sized.uri).startswith("96")
    finally:
        sized.stop()
