"""World Weaver as an MCP server: ``run`` is what ``python -m ww.mcp`` (and the ``ww mcp``
command) calls.

The server is a client of World Weaver built on the SDK: an ``AsyncWorldWeaver`` against a
running server (``url``, ``api_key``) or ``AsyncWorldWeaver.embedded`` on a data directory,
so both targets share every tool's code. The client is opened once, before the transport
starts, and closed after it stops: an embedded engine lives as long as the MCP server, not
per MCP session.
"""

from __future__ import annotations

import ipaddress
import logging
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import anyio
from mcp.server.fastmcp import FastMCP

from ww.mcp.tools import register
from ww.sdk import DEFAULT_URL, AsyncWorldWeaver

__all__ = ["Listen", "LogLevel", "Target", "Transport", "build", "connect", "run", "serve"]

Transport = Literal["stdio", "streamable-http"]
LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]

INSTRUCTIONS = (
    "World Weaver is long-term memory. Store what happened (store), what you know "
    "(create_entity, create_relation) and how to do things (create_skill); recall all of "
    "it for a query (recall), and give feedback on what a recall returned so it learns."
)


log = logging.getLogger(__name__)


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True, slots=True)
class Target:
    """Where the tools' calls go: a server at ``url`` or, with ``embedded``, an engine in
    this process on ``data_dir`` (None: ``WW_DATA_DIR``). ``session_id``: the session of
    a call that names none (None: the World Weaver server's default)."""

    url: str = DEFAULT_URL
    # Kept out of the repr, so that printing or logging a Target shows no key.
    api_key: str | None = field(default=None, repr=False)
    session_id: str | None = None
    embedded: bool = False
    data_dir: Path | None = None


@asynccontextmanager
async def connect(target: Target) -> AsyncIterator[AsyncWorldWeaver]:
    """The SDK client for ``target``, open (an embedded engine started) until exit."""
    client = (
        AsyncWorldWeaver.embedded(
            target.data_dir, api_key=target.api_key, session_id=target.session_id
        )
        if target.embedded
        else AsyncWorldWeaver(target.url, api_key=target.api_key, session_id=target.session_id)
    )
    async with client:
        yield client


@dataclass(frozen=True, slots=True)
class Listen:
    """Where streamable HTTP listens: ``http://host:port/path`` (FastMCP guards a loopback
    host against DNS rebinding)."""

    host: str = "127.0.0.1"
    port: int = 8000
    path: str = "/mcp"


def build(
    client: AsyncWorldWeaver, listen: Listen = Listen(), log_level: LogLevel = "WARNING"
) -> FastMCP:
    """The MCP server whose tools call ``client``."""
    mcp = FastMCP(
        "world-weaver",
        instructions=INSTRUCTIONS,
        host=listen.host,
        port=listen.port,
        streamable_http_path=listen.path,
        log_level=log_level,
    )
    register(mcp, client)
    return mcp


async def serve(
    target: Target,
    transport: Transport = "stdio",
    listen: Listen = Listen(),
    log_level: LogLevel = "WARNING",
) -> None:
    """Serve MCP over ``transport`` until the client goes (stdio) or the process is
    stopped (HTTP)."""
    if transport != "stdio" and not _loopback(listen.host):
        log.warning(
            "the MCP endpoint on %s has no authentication of its own: anyone who reaches "
            "it acts with this server's World Weaver credentials (docs/mcp.md)",
            listen.host,
        )
    async with connect(target) as client:
        mcp = build(client, listen, log_level)
        if transport == "stdio":
            await mcp.run_stdio_async()
        else:
            await mcp.run_streamable_http_async()


def run(
    target: Target,
    transport: Transport = "stdio",
    listen: Listen = Listen(),
    log_level: LogLevel = "WARNING",
) -> None:
    """``serve`` on a new event loop: the entry point of ``python -m ww.mcp`` and ``ww mcp``.

    Logs go to stderr only (stdout is the stdio transport's), at ``log_level``: WARNING by
    default, and no line at any level carries a memory's content or a key."""
    logging.basicConfig(
        stream=sys.stderr, level=log_level, format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
    anyio.run(serve, target, transport, listen, log_level)
