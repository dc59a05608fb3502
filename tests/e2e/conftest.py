"""Helpers for end-to-end tests that run the real server as a subprocess on loopback."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx
import pytest

from ww.models import EpisodeFilter
from ww.storage import QdrantEdgeIndex, SQLiteRecordStore

HOST = "127.0.0.1"
DIMENSION = 384
READY_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 30.0


def free_port() -> int:
    """A loopback port nobody listens on right now (the kernel picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def server_env(data_dir: Path, port: int, **extra: str) -> dict[str, str]:
    """The caller's environment without any WW_* variable, plus the ones given."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("WW_")}
    env.update(
        WW_DATA_DIR=str(data_dir),
        WW_API_HOST=HOST,
        WW_API_PORT=str(port),
        WW_ENVIRONMENT="test",
        PYTHONUNBUFFERED="1",
        # The suite's high limit (tests/conftest.py): the soak and load tests would
        # otherwise meet the service's default of 100 a minute.
        WW_RATE_LIMIT=os.environ.get("WW_RATE_LIMIT", "100/minute"),
    )
    env.update(extra)
    return env


def server_cmd() -> list[str]:
    return [sys.executable, "-m", "ww.api.server"]


@dataclass
class Server:
    """One ``python -m ww.api.server`` process; its output goes to a log file."""

    data_dir: Path
    log_path: Path
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def start(self, **extra_env: str) -> Server:
        # cwd is the log folder so that no stray .env file is picked up.
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                server_cmd(),
                env=server_env(self.data_dir, self.port, **extra_env),
                cwd=self.log_path.parent,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        return self

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def wait_ready(self, timeout: float = READY_TIMEOUT_S) -> None:
        assert self.proc is not None
        deadline = time.monotonic() + timeout
        with httpx.Client(base_url=self.url, timeout=5.0) as client:
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    pytest.fail(f"server exited with {self.proc.returncode}:\n{self.log()[-4000:]}")
                try:
                    if client.get("/api/v1/health").status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                time.sleep(0.2)
        pytest.fail(f"server not healthy after {timeout:.0f} s:\n{self.log()[-4000:]}")

    def kill(self) -> None:
        """SIGKILL: the process gets no chance to flush or close anything."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=STOP_TIMEOUT_S)

    def stop(self) -> None:
        """SIGTERM and wait for the graceful shutdown uvicorn runs on a deploy.

        uvicorn re-raises the signal once shut down, so the exit status is -SIGTERM; what
        tells a clean stop is the lifespan's shutdown having completed.
        """
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=STOP_TIMEOUT_S)
                pytest.fail(f"server ignored SIGTERM:\n{self.log()[-4000:]}")
        assert self.proc.returncode in (0, -signal.SIGTERM), self.log()[-4000:]
        assert "Application shutdown complete" in self.log(), self.log()[-4000:]

    def cleanup(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=STOP_TIMEOUT_S)


@pytest.fixture
def servers() -> Iterator[list[Server]]:
    """Servers started by a test; any still running are killed at teardown."""
    started: list[Server] = []
    try:
        yield started
    finally:
        for server in started:
            server.cleanup()


@pytest.fixture
def start_server(tmp_path: Path, servers: list[Server]) -> Any:
    """``start_server(data_dir, **env)`` starts a server and waits until it is healthy."""

    def start(data_dir: Path, **extra_env: str) -> Server:
        server = Server(data_dir, tmp_path / f"server-{len(servers)}.log")
        servers.append(server)
        server.start(**extra_env).wait_ready()
        return server

    return start


@dataclass(frozen=True)
class StoreView:
    record_ids: set[UUID]
    pending: int
    vector_ids: set[UUID]
    orphans: set[UUID]


def inspect_stores(data_dir: Path, session_id: str) -> StoreView:
    """Open both embedded stores directly (no server running) and read one session."""

    async def read() -> StoreView:
        records = SQLiteRecordStore(data_dir / "ww.sqlite3")
        vectors = QdrantEdgeIndex(data_dir / "vectors", DIMENSION)
        await records.open()
        await vectors.open()
        try:
            record_ids: set[UUID] = set()
            cursor = None
            flt = EpisodeFilter(include_archived=True)
            while True:
                page = await records.list_episodes(session_id, flt, 500, cursor)
                record_ids.update(ep.id for ep in page.items)
                if (cursor := page.next_cursor) is None:
                    break
            pending = len(await records.pending_episodes(session_id, 10_000))
            vector_ids = await vectors.ids(session_id)
            existing = await records.existing_ids(session_id, list(vector_ids))
            return StoreView(record_ids, pending, vector_ids, vector_ids - existing)
        finally:
            await vectors.close()
            await records.close()

    return asyncio.run(read())
