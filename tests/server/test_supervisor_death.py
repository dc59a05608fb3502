"""Workers die with their supervisor: a SIGKILL of ``python -m ww.api.server`` with
``WW_API_WORKERS=2`` on the server tier leaves no worker serving the port
(``ww.api.lifeline``). Before, the two workers went on answering, orphaned.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.neo4j_launcher import Neo4jProcess, free_port, wipe_database

pytestmark = pytest.mark.slow

HOST = "127.0.0.1"
READY_TIMEOUT_S = 180.0
# uvicorn's graceful stop of an idle worker takes well under a second; this only bounds a
# test that would otherwise wait for ever.
GONE_TIMEOUT_S = 30.0


def _alive(pid: int) -> bool:
    """Running, not a zombie waiting for a reaper (or gone altogether)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    state = next(line for line in status.splitlines() if line.startswith("State:"))
    return "Z" not in state.split()[1]


def _answers(port: int) -> bool:
    try:
        with socket.create_connection((HOST, port), timeout=2.0) as sock:
            sock.sendall(b"GET /api/v1/health HTTP/1.1\r\nHost: t\r\n\r\n")
            return sock.recv(16).startswith(b"HTTP/1.1")
    except OSError:
        return False


def test_a_killed_supervisor_takes_its_workers_with_it(
    neo4j_server: Neo4jProcess, tmp_path: Path
) -> None:
    wipe_database(neo4j_server.uri)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("WW_")}
    env.update(
        WW_API_WORKERS="2",
        WW_API_HOST=HOST,
        WW_API_PORT=str(port),
        WW_NEO4J_URI=neo4j_server.uri,
        WW_VECTOR_BACKEND="neo4j",
        WW_DATA_DIR=str(tmp_path / "data"),
        WW_ENVIRONMENT="test",
        PYTHONUNBUFFERED="1",
    )
    log_path = tmp_path / "server.log"
    with log_path.open("ab") as log:
        # Its own process group, so that the finally below can reach leftover workers.
        proc = subprocess.Popen(
            [sys.executable, "-m", "ww.api.server"],
            env=env,
            cwd=tmp_path,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    try:
        pids = _worker_pids(proc, f"http://{HOST}:{port}", log_path)
        assert proc.pid not in pids
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        deadline = time.monotonic() + GONE_TIMEOUT_S
        while any(_alive(p) for p in pids) or _answers(port):
            assert time.monotonic() < deadline, (
                f"workers {[p for p in pids if _alive(p)]} outlived their supervisor "
                f"(port answers: {_answers(port)})\n{log_path.read_text(errors='replace')[-3000:]}"
            )
            time.sleep(0.2)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)


def _worker_pids(proc: subprocess.Popen[bytes], url: str, log_path: Path) -> set[int]:
    """Both workers' pids, read from the health reports of fresh connections."""
    deadline = time.monotonic() + READY_TIMEOUT_S
    pids: set[int] = set()
    while len(pids) < 2:
        if proc.poll() is not None:
            pytest.fail(f"server exited with {proc.returncode}:\n{log_path.read_text()[-4000:]}")
        assert time.monotonic() < deadline, f"saw only workers {pids}"
        try:
            # A new connection each time: the kernel hands it to either worker.
            with httpx.Client(base_url=url, timeout=5.0) as client:
                r = client.get("/api/v1/health")
            if r.status_code == 200:
                pids.add(int(r.json()["worker_pid"]))
        except httpx.TransportError:
            time.sleep(0.5)
    return pids
