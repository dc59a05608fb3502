"""Stalled and surplus connections against the real server (``ww.api.protocol``).

``python -m ww.api.server`` runs with ``WW_API_REQUEST_TIMEOUT=1`` and
``WW_API_MAX_CONNECTIONS=3``; the clients are raw sockets on loopback, so that they can
stop half-way through a request. Waits are bounded generously (the test asserts what
happens, never how fast).
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.e2e.conftest import HOST, Server

pytestmark = pytest.mark.slow

TIMEOUT_S = 1
MAX_CONNECTIONS = 3
# Far longer than the timeout: a connection still open after this was never going to close.
PATIENCE_S = 15.0
HEALTH = b"GET /api/v1/health HTTP/1.1\r\nHost: t\r\n\r\n"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("limits")
    srv = Server(tmp / "data", tmp / "server.log").start(
        WW_API_REQUEST_TIMEOUT=str(TIMEOUT_S), WW_API_MAX_CONNECTIONS=str(MAX_CONNECTIONS)
    )
    try:
        srv.wait_ready()
        yield srv
    finally:
        srv.stop()


def _connect(server: Server) -> socket.socket:
    sock = socket.create_connection((HOST, server.port), timeout=PATIENCE_S)
    return sock


def _read_until_closed(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes; fails if it is still open after
    ``PATIENCE_S``."""
    data = b""
    while True:
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            return data
        except TimeoutError:
            pytest.fail(f"connection still open after {PATIENCE_S} s; got {data!r}")
        if not chunk:
            return data
        data += chunk


def _response(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    """One response read off a kept-alive connection (Content-Length framed)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, f"closed before a response: {data!r}"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.lower().split(": ", 1) for line in lines[1:])
    while len(body) < int(headers.get("content-length", "0")):
        body += sock.recv(65536)
    return int(lines[0].split()[1]), headers, body


def _status(raw: bytes) -> int:
    return int(raw.split(b"\r\n", 1)[0].split()[1])


def _json_body(raw: bytes) -> Any:
    return json.loads(raw.partition(b"\r\n\r\n")[2])


def test_a_client_that_stops_in_its_headers_is_disconnected(server: Server) -> None:
    with _connect(server) as sock:
        sock.sendall(b"GET /api/v1/health HTTP/1.1\r\nHost: t\r\n")  # no blank line
        assert _read_until_closed(sock) == b""


def test_a_client_that_sends_nothing_is_disconnected(server: Server) -> None:
    with _connect(server) as sock:
        assert _read_until_closed(sock) == b""


def test_a_body_that_stops_gets_408_and_the_connection_closes(server: Server) -> None:
    body = json.dumps({"content": "never finished"}).encode()
    with _connect(server) as sock:
        sock.sendall(
            b"POST /api/v1/episodes HTTP/1.1\r\nHost: t\r\nX-Session-ID: stall\r\n"
            b"Content-Type: application/json\r\nContent-Length: "
            + str(len(body)).encode()
            + b"\r\n\r\n"
            + body[:10]
        )
        raw = _read_until_closed(sock)
    assert _status(raw) == 408, raw
    assert _json_body(raw)["error"]["code"] == "request_timeout"


def test_a_slow_but_steady_client_is_served(server: Server) -> None:
    body = json.dumps({"content": "sent a few bytes at a time"}).encode()
    with _connect(server) as sock:
        # Headers in two pieces, then the body in six, each pause under the timeout and the
        # whole request well over it.
        head = (
            b"POST /api/v1/episodes HTTP/1.1\r\nHost: t\r\nX-Session-ID: steady\r\n"
            b"Content-Type: application/json\r\nContent-Length: "
            + str(len(body)).encode()
            + b"\r\n\r\n"
        )
        sock.sendall(head[:20])
        time.sleep(TIMEOUT_S * 0.4)
        sock.sendall(head[20:])
        step = len(body) // 6 + 1
        for i in range(0, len(body), step):
            time.sleep(TIMEOUT_S * 0.4)
            sock.sendall(body[i : i + step])
        status, _, answer = _response(sock)
    assert status == 201, answer
    assert json.loads(answer)["content"] == "sent a few bytes at a time"


def test_a_request_beyond_the_connection_cap_gets_503(server: Server) -> None:
    held: list[socket.socket] = []
    try:
        # Kept-alive connections, each having been served once (uvicorn keeps them for 5 s).
        for _ in range(MAX_CONNECTIONS):
            sock = _connect(server)
            held.append(sock)
            sock.sendall(HEALTH)
            assert _response(sock)[0] == 200
        with _connect(server) as extra:
            extra.sendall(HEALTH)
            raw = _read_until_closed(extra)
        assert _status(raw) == 503, raw
        assert b"\r\nretry-after: 1\r\n" in raw.lower()
        assert _json_body(raw)["error"]["code"] == "service_unavailable"
        # One of the held connections is still served: the cap refuses only the surplus.
        held[0].sendall(HEALTH)
        assert _response(held[0])[0] == 200
    finally:
        for sock in held:
            sock.close()
    # Once they are closed, a new connection is served again.
    deadline = time.monotonic() + PATIENCE_S
    while True:
        with _connect(server) as sock:
            sock.sendall(HEALTH)
            if _response(sock)[0] == 200:
                break
        assert time.monotonic() < deadline, "the cap never let a new connection in"
        time.sleep(0.1)


def test_the_log_holds_no_traceback(server: Server) -> None:
    assert "Traceback" not in server.log()
