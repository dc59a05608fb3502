"""The MCP server over both transports, driven by the ``mcp`` SDK's own client: stdio on
an embedded engine, streamable HTTP on a real World Weaver server (and on embedded)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from tests.mcp.conftest import (
    API_KEY,
    STARTUP_S,
    child_env,
    http_server,
    http_session,
    stdio_session,
)
from tests.mcp.scenario import CONTENTS, call, exercise, read_json

pytestmark = pytest.mark.slow


async def test_stdio_on_an_embedded_engine(tmp_path: Path) -> None:
    args = ["-m", "ww.mcp", "--embedded", "--data-dir", str(tmp_path / "mcp-data")]
    args += ["--log-level", "DEBUG"]
    log = tmp_path / "stderr"
    async with stdio_session(args, child_env(WW_SESSION_ID="agent-1"), log) as session:
        await exercise(session)
        stats = await read_json(session, "ww://session/stats")
        assert stats["session_id"] == "agent-1"
    # Even at DEBUG, no memory's content reaches the log.
    assert "Processing request" in log.read_text()
    assert not any(content in log.read_text() for content in CONTENTS)


async def test_streamable_http_on_a_real_server(ww_server: str, tmp_path: Path) -> None:
    env = child_env(WW_API_KEY=API_KEY)
    with http_server(["--url", ww_server, "--session", "agent-2"], env, tmp_path / "err") as url:
        async with http_session(url) as session:
            await exercise(session)


async def test_a_call_names_its_own_session(ww_server: str, tmp_path: Path) -> None:
    env = child_env(WW_API_KEY=API_KEY)
    with http_server(["--url", ww_server, "--session", "home"], env, tmp_path / "err") as url:
        async with http_session(url) as session:
            away = await call(session, "store", content="kept elsewhere", session_id="away")
            assert away["session_id"] == "away"
            home = await read_json(session, "ww://session/episodes/recent")
            assert home["items"] == []
            there = await read_json(session, "ww://sessions/away/episodes/recent")
            assert [e["id"] for e in there["items"]] == [away["id"]]
            stats = await read_json(session, "ww://sessions/away/stats")
            assert stats["episodes"] == 1


async def test_a_wrong_key_is_a_tool_error(ww_server: str, tmp_path: Path) -> None:
    env = child_env(WW_API_KEY="not-the-key-0123456789")
    with http_server(["--url", ww_server], env, tmp_path / "err") as url:
        async with http_session(url) as session:
            refused = await session.call_tool("store", {"content": "a secret note"})
            assert refused.isError
    log = (tmp_path / "err").read_text()
    assert "a secret note" not in log and "not-the-key" not in log


def test_stdio_stdout_carries_nothing_but_protocol(tmp_path: Path) -> None:
    """Every line the stdio server writes to stdout is a JSON-RPC message, even at DEBUG
    with an embedded engine starting, storing and stopping: logs go to stderr."""
    messages = [
        {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "initialize",
            "params": {
                "protocolVersion": "2025-06-18",
                "capabilities": {},
                "clientInfo": {"name": "test", "version": "0"},
            },
        },
        {"jsonrpc": "2.0", "method": "notifications/initialized"},
        {
            "jsonrpc": "2.0",
            "id": 2,
            "method": "tools/call",
            "params": {"name": "store", "arguments": {"content": CONTENTS[0]}},
        },
    ]
    command = [sys.executable, "-m", "ww.mcp", "--embedded", "--log-level", "DEBUG"]
    command += ["--data-dir", str(tmp_path / "mcp-data")]
    env = {"PATH": os.environ["PATH"], **child_env()}
    child = subprocess.Popen(
        command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env
    )
    # A hung server fails the test rather than stopping the run.
    watchdog = threading.Timer(STARTUP_S, child.kill)
    watchdog.start()
    try:
        assert child.stdin is not None and child.stdout is not None
        child.stdin.write("".join(json.dumps(m) + "\n" for m in messages).encode())
        child.stdin.flush()
        answers = []
        while len(answers) < 2:  # the store's answer; then closing stdin ends the server
            answers.append(json.loads(child.stdout.readline()))
        rest, stderr = child.communicate()  # closes stdin
    finally:
        watchdog.cancel()
    answers += [json.loads(line) for line in rest.splitlines()]
    assert [a["id"] for a in answers] == [1, 2]
    assert not answers[1]["result"]["isError"]
    assert stderr and CONTENTS[0].encode() not in stderr


async def test_ww_mcp_serves_over_stdio_with_the_cli_connection(tmp_path: Path) -> None:
    """`ww --embedded --data-dir D mcp` is the same server as `python -m ww.mcp`."""
    args = ["-m", "ww.cli", "--embedded", "--data-dir", str(tmp_path / "data"), "mcp"]
    async with stdio_session([*args, "--log-level", "WARNING"], child_env()) as session:
        assert "recall" in {tool.name for tool in (await session.list_tools()).tools}
        stored = await call(session, "store", content="stored through ww mcp")
        assert stored["content"] == "stored through ww mcp"
