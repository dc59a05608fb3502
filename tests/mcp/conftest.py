"""The MCP server as its users run it: a child process (``python -m ww.mcp``) driven by the
``mcp`` SDK's own client, over stdio or streamable HTTP on a loopback port. Its memory is
an embedded engine on a temporary data directory, or a real World Weaver server on a
loopback port (``tests.sdk.server``)."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager, nullcontext
from pathlib import Path

import httpx
import pytest
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.client.streamable_http import streamable_http_client
from pydantic import SecretStr

import ww
from tests.sdk.server import HOST, make_app, serve
from ww.config import Settings
from ww.embedding import EmbeddingService

API_KEY = "mcp-test-key-0123456789"
# The child imports this checkout's ww, whatever the venv's editable install points at.
SRC = str(Path(ww.__file__).resolve().parents[1])
STARTUP_S = 120.0


def child_env(**extra: str) -> dict[str, str]:
    """What the child sees besides the MCP client's default environment (PATH, HOME...):
    no WW_* of the test run's own."""
    return {"PYTHONPATH": SRC, **extra}


@asynccontextmanager
async def stdio_session(
    args: Sequence[str], env: dict[str, str], log: Path | None = None
) -> AsyncIterator[ClientSession]:
    """A client session with ``python ARGS`` over stdio; its stderr into ``log``."""
    params = StdioServerParameters(command=sys.executable, args=list(args), env=env)
    with log.open("w") if log is not None else nullcontext(sys.stderr) as errlog:
        async with (
            stdio_client(params, errlog=errlog) as (read, write),
            ClientSession(read, write) as session,
        ):
            await session.initialize()
            yield session


@asynccontextmanager
async def http_session(url: str) -> AsyncIterator[ClientSession]:
    async with (
        streamable_http_client(url) as (read, write, _),
        ClientSession(read, write) as session,
    ):
        await session.initialize()
        yield session


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def http_server(args: Sequence[str], env: dict[str, str], log: Path) -> Iterator[str]:
    """``python -m ww.mcp --transport streamable-http`` on a loopback port; yields its URL
    once it answers, stops it on exit."""
    port = free_port()
    command = [sys.executable, "-m", "ww.mcp", "--transport", "streamable-http", *args]
    command += ["--host", HOST, "--port", str(port)]
    with log.open("wb") as err:
        child = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=err)
    try:
        url = f"http://{HOST}:{port}/mcp"
        _wait_listening(child, url, log)
        yield url
    finally:
        child.terminate()
        child.wait(timeout=30)


def _wait_listening(child: subprocess.Popen[bytes], url: str, log: Path) -> None:
    deadline = time.monotonic() + STARTUP_S
    while time.monotonic() < deadline:
        if child.poll() is not None:
            raise RuntimeError(f"the MCP server exited: {log.read_text()[-2000:]}")
        try:
            httpx.get(url, timeout=1.0)
            return
        except httpx.TransportError:
            time.sleep(0.1)
    raise RuntimeError("the MCP server did not start listening")


@pytest.fixture
def ww_server(settings: Settings, embedding_service: EmbeddingService) -> Iterator[str]:
    """A real World Weaver server on a loopback port, with an API key."""
    app = make_app(settings, embedding_service, api_key=SecretStr(API_KEY))
    with serve(app) as url:
        yield url
