"""A graceful stop answers a request that was on its way (``ww.api.protocol``).

uvicorn's stop closes at once every connection with no request under way; a client that
had connected and was about to send (or whose bytes the server had not read yet) got its
connection reset. That is the old worker of a rolling restart, under load. Here such a
connection is still answered, with ``Connection: close``, and a connection that never
sends does not hold the stop up for ever.
"""

from __future__ import annotations

import signal
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.conftest import HOST, Server

pytestmark = pytest.mark.slow

# Bounds on waits, never asserted as durations.
PATIENCE_S = 30.0
HEALTH = b"GET /api/v1/health HTTP/1.1\r\nHost: t\r\n\r\n"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    srv = Server(tmp_path / "data", tmp_path / "server.log").start()
    try:
        srv.wait_ready()
        yield srv
    finally:
        srv.cleanup()


def _refused(port: int) -> bool:
    try:
        socket.create_connection((HOST, port), timeout=PATIENCE_S).close()
    except ConnectionRefusedError:
        return True
    return False


def _read_until_closed(sock: socket.socket) -> bytes:
    data = b""
    while True:
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            return data
        if not chunk:
            return data
        data += chunk


def test_a_request_sent_as_the_server_stops_is_answered(server: Server) -> None:
    assert server.proc is not None
    waiting = socket.create_connection((HOST, server.port), timeout=PATIENCE_S)
    silent = socket.create_connection((HOST, server.port), timeout=PATIENCE_S)
    # A later connection answered means the two before it were accepted (one queue, in order).
    with socket.create_connection((HOST, server.port), timeout=PATIENCE_S) as probe:
        probe.sendall(HEALTH)
        assert probe.recv(12) == b"HTTP/1.1 200"

    server.proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + PATIENCE_S
    while not _refused(server.port):  # the stop has begun: no new connection is accepted
        assert time.monotonic() < deadline, server.log()[-3000:]
        time.sleep(0.02)

    waiting.sendall(HEALTH)
    answer = _read_until_closed(waiting)
    assert answer.startswith(b"HTTP/1.1 200"), (answer, server.log()[-3000:])
    assert b"\r\nconnection: close\r\n" in answer.lower()
    waiting.close()

    # The connection that never sends is closed by the server, which then finishes stopping.
    assert _read_until_closed(silent) == b""
    silent.close()
    server.proc.wait(timeout=PATIENCE_S)
    assert "Application shutdown complete" in server.log()
