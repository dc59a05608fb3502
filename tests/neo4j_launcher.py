"""Start and stop the test Neo4j (tools/neo4j-harness) from the test suite.

A missing launcher skips the server-tier tests on a developer's machine, with the command
that builds it; under CI (``CI`` set) it fails them, so a green CI always ran them.
"""

from __future__ import annotations

import collections
import os
import shutil
import socket
import subprocess
import threading
import time
from pathlib import Path
from typing import IO

import pytest

from ww.config import Settings

__all__ = [
    "LAUNCHER_JAR",
    "Neo4jProcess",
    "free_port",
    "launcher_jar",
    "reset_record_store",
    "wipe_database",
]

ROOT = Path(__file__).resolve().parents[1]
LAUNCHER_JAR = ROOT / "tools" / "neo4j-harness" / "target" / "neo4j-harness-launcher.jar"
BUILD_HINT = "make test-server (or: mvn -B -q -f tools/neo4j-harness/pom.xml package)"
START_TIMEOUT = float(os.environ.get("WW_TEST_NEO4J_START_TIMEOUT", "300"))

# Bolt URIs of the databases this test run started: the only ones it may wipe, whatever
# WW_NEO4J_URI a developer's environment or .env points at.
_STARTED: set[str] = set()


def launcher_jar() -> Path:
    """The built launcher, or skip (fail under CI) with how to build it."""
    jar = Path(os.environ.get("WW_TEST_NEO4J_JAR", LAUNCHER_JAR))
    problem = None
    if not jar.is_file():
        problem = f"Neo4j test launcher not built ({jar}); build it with: {BUILD_HINT}"
    elif shutil.which("java") is None:
        problem = "java is not installed: the Neo4j test launcher needs a JDK 17"
    if problem is not None:
        if os.environ.get("CI"):
            pytest.fail(problem, pytrace=False)
        pytest.skip(problem)
    return jar


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Neo4jProcess:
    """One launcher process: Bolt on 127.0.0.1:``port``, its store under ``home``, a page
    cache of ``page_cache_mb`` (the launcher's 64 when None: benchmarks of large stores pass
    the deployment's size).

    Starting again on the same ``home`` after ``kill()`` recovers what was committed, as a
    crashed server would.
    """

    def __init__(
        self, jar: Path, home: Path, port: int | None = None, page_cache_mb: int | None = None
    ) -> None:
        self.jar = jar
        self.home = home
        self.page_cache_mb = page_cache_mb
        self.port = port or free_port()
        self.uri = f"bolt://127.0.0.1:{self.port}"
        self.start_seconds = 0.0
        self._proc: subprocess.Popen[str] | None = None
        self._tail: collections.deque[str] = collections.deque(maxlen=40)

    def start(self) -> None:
        cmd = ["java", "-Xmx1g", "-jar", str(self.jar), str(self.port), str(self.home)]
        if self.page_cache_mb is not None:
            cmd.append(str(self.page_cache_mb))
        began = time.monotonic()
        # stdin stays a pipe we hold: if this test process dies, the launcher sees its
        # stdin close and exits, so no database outlives a crashed run.
        proc = subprocess.Popen(
            cmd,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self._proc = proc
        ready = threading.Event()
        assert proc.stdout is not None
        threading.Thread(
            target=self._drain, args=(proc.stdout, ready), name="neo4j-out", daemon=True
        ).start()
        while not ready.wait(0.2):
            if proc.poll() is not None or time.monotonic() - began > START_TIMEOUT:
                self.kill()
                tail = "\n".join(self._tail)
                raise RuntimeError(f"Neo4j launcher did not start ({cmd}):\n{tail}")
        self.start_seconds = time.monotonic() - began
        _STARTED.add(self.uri)

    def _drain(self, out: IO[str], ready: threading.Event) -> None:
        for line in out:
            self._tail.append(line.rstrip())
            if line.startswith("READY "):
                ready.set()

    def kill(self) -> None:
        """Stop at once, as a crash would (SIGKILL: no clean shutdown)."""
        if self._proc is not None:
            self._proc.kill()
            self._proc.wait(30)
            self._close_pipes()
            self._proc = None

    def stop(self) -> None:
        """Stop cleanly: closing stdin makes the launcher shut the database down."""
        if self._proc is None:
            return
        assert self._proc.stdin is not None
        self._proc.stdin.close()
        try:
            self._proc.wait(60)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait(30)
        self._close_pipes()
        self._proc = None

    def _close_pipes(self) -> None:
        assert self._proc is not None
        for pipe in (self._proc.stdin, self._proc.stdout):
            if pipe is not None and not pipe.closed:
                pipe.close()


def wipe_database(uri: str) -> None:
    """Remove every node and World Weaver index, so a test starts from an empty database.

    Only for a database this run started (see ``reset_record_store``)."""
    assert uri in _STARTED, uri
    from neo4j import GraphDatabase

    with GraphDatabase.driver(uri, auth=None) as driver:
        driver.execute_query("MATCH (n) DETACH DELETE n")
        records, _, _ = driver.execute_query(
            "SHOW INDEXES YIELD name, type WHERE (type = 'FULLTEXT' AND name STARTS WITH "
            "'ww_fts_') OR (type = 'VECTOR' AND name STARTS WITH 'wwvec') RETURN name"
        )
        for record in records:
            driver.execute_query(f"DROP INDEX {record['name']} IF EXISTS")


def reset_record_store(settings: Settings) -> None:
    """Give a new app an empty record store: the server tier shares one Neo4j across tests,
    where the embedded tier gets a fresh data directory."""
    if settings.neo4j_uri is None:
        return
    if settings.neo4j_uri not in _STARTED:
        pytest.fail(
            f"WW_NEO4J_URI={settings.neo4j_uri} is not a test database: the tests would "
            "wipe it. Unset it; make test-server starts its own Neo4j.",
            pytrace=False,
        )
    wipe_database(settings.neo4j_uri)
