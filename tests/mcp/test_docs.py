"""docs/mcp.md's configuration snippets are valid JSON, and each starts a working server:
a ``command`` entry is run as an MCP client would run it (the interpreter of this test run
for the snippet's Python, a temporary data directory, the loopback test server for the
URL, the test key for the API key), a ``url`` entry is served by the streamable HTTP
transport at that path; each lists the tools and stores one memory."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from mcp import ClientSession

from tests.mcp.conftest import (
    API_KEY,
    child_env,
    http_server,
    http_session,
    stdio_session,
)
from tests.mcp.scenario import TOOLS, call
from ww.mcp.__main__ import parser

pytestmark = pytest.mark.slow

DOC = Path(__file__).resolve().parents[2] / "docs" / "mcp.md"
_JSON = re.compile(r"^```json\n(.*?)^```", re.S | re.M)
SECTIONS = ("## Claude Desktop", "## Cursor")


def snippets() -> list[tuple[str, dict[str, Any]]]:
    """(section, server entry) for every server of every JSON block of the two sections."""
    text = DOC.read_text()
    found = []
    for section in SECTIONS:
        start = text.index(f"\n{section}\n")
        end = text.index("\n## ", start + 1)
        for block in _JSON.findall(text[start:end]):
            servers = json.loads(block)["mcpServers"]
            found += [(section, entry) for entry in servers.values()]
    return found


SNIPPETS = snippets()


def test_both_clients_have_an_embedded_and_a_remote_snippet() -> None:
    for section in SECTIONS:
        args = [entry.get("args", []) for name, entry in SNIPPETS if name == section]
        assert any("--embedded" in a for a in args) and any("--url" in a for a in args)


def localised(args: list[str], data_dir: Path, url: str) -> list[str]:
    """The snippet's arguments with its placeholders for a data directory and a server
    replaced by this test's."""
    out = list(args)
    for flag, value in (("--data-dir", str(data_dir)), ("--url", url)):
        if flag in out:
            out[out.index(flag) + 1] = value
    return out


async def works(session: ClientSession) -> None:
    assert {tool.name for tool in (await session.list_tools()).tools} == TOOLS
    stored = await call(session, "store", content="configured from the docs")
    assert stored["content"] == "configured from the docs"


@pytest.mark.parametrize(
    "entry", [e for _, e in SNIPPETS if "command" in e], ids=lambda e: " ".join(e["args"][2:4])
)
async def test_command_snippet_starts_the_server(
    entry: dict[str, Any], ww_server: str, tmp_path: Path
) -> None:
    assert Path(entry["command"]).name.startswith("python")
    env = {**entry.get("env", {})}
    if "WW_API_KEY" in env:
        env["WW_API_KEY"] = API_KEY
    args = localised(entry["args"], tmp_path / "mcp-data", ww_server)
    assert args[:2] == ["-m", "ww.mcp"]
    async with stdio_session(args, child_env(**env)) as session:
        await works(session)


@pytest.mark.parametrize("entry", [e for _, e in SNIPPETS if "url" in e], ids=lambda e: e["url"])
async def test_url_snippet_is_the_http_transports_address(
    entry: dict[str, Any], tmp_path: Path
) -> None:
    where = urlsplit(entry["url"])
    assert (where.scheme, where.hostname, where.path) == ("http", "127.0.0.1", "/mcp")
    args = ["--embedded", "--data-dir", str(tmp_path / "mcp-data"), "--path", where.path]
    with http_server(args, child_env(), tmp_path / "err") as url:
        async with http_session(url) as session:
            await works(session)


def test_every_option_is_documented() -> None:
    text = DOC.read_text()
    flags = {f for action in parser()._actions for f in action.option_strings if f != "-h"}
    assert flags - {"--help"} == {f for f in flags if f"`{f}`" in text}
