"""The MCP server over both transports, driven by the ``mcp`` SDK's own client: stdio on
an embedded engine, streamable HTTP on a real World Weaver server (and on embedded)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.mcp.conftest import API_KEY, child_env, http_server, http_session, stdio_session
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
