"""Fixtures of the server-tier fault tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.neo4j_launcher import Neo4jProcess, launcher_jar


@pytest.fixture
def own_neo4j(tmp_path: Path) -> Iterator[Neo4jProcess]:
    """A Neo4j of the test's own (the run's shared one must stay up for the other tests),
    free to be stopped and started again on the same store."""
    server = Neo4jProcess(launcher_jar(), tmp_path / "neo4j-home")
    server.start()
    yield server
    server.stop()
