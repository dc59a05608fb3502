"""What every transport and every target must do alike, through the MCP client."""

from __future__ import annotations

import json
from typing import Any

from mcp import ClientSession
from mcp.types import CallToolResult, TextContent

__all__ = ["CONTENTS", "TOOLS", "call", "exercise", "read_json"]

TOOLS = {
    "store",
    "recall",
    "feedback",
    "create_entity",
    "get_entity",
    "list_entities",
    "search_entities",
    "create_relation",
    "list_relations",
    "create_skill",
    "recall_skills",
    "how_to",
    "record_skill_run",
    "consolidate",
}


# What ``exercise`` stores, for the tests that look for it where it must not be.
CONTENTS = ("The deploy failed: the disk was full", "Lunch was a sandwich")


async def call(session: ClientSession, tool: str, **arguments: Any) -> dict[str, Any]:
    """The structured answer of a tool that must succeed."""
    result = await session.call_tool(tool, arguments)
    assert not result.isError, _text(result)
    assert result.structuredContent is not None
    return result.structuredContent


def _text(result: CallToolResult) -> str:
    return " ".join(c.text for c in result.content if isinstance(c, TextContent))


async def read_json(session: ClientSession, uri: str) -> Any:
    answer = await session.read_resource(uri)  # type: ignore[arg-type]
    (content,) = answer.contents
    assert content.mimeType == "application/json"
    return json.loads(getattr(content, "text", ""))


async def exercise(session: ClientSession) -> None:
    """List the tools, store, recall it back, a bad argument, the resources."""
    listed = await session.list_tools()
    assert {tool.name for tool in listed.tools} == TOOLS
    schema = next(t for t in listed.tools if t.name == "store").inputSchema
    # The API's own constraints, from EpisodeCreate.
    assert schema["properties"]["content"]["minLength"] == 1
    assert "session_id" in schema["properties"] and schema["required"] == ["content"]

    stored = await call(session, "store", content=CONTENTS[0])
    await call(session, "store", content=CONTENTS[1], speaker="ops")
    found = await call(session, "recall", query="why did the deploy fail?")
    ids = [hit["id"] for hit in found["hits"]]
    assert ids[0] == stored["id"]
    reward = await call(session, "feedback", recall_id=found["recall_id"], reward=1.0)
    assert reward["recall_id"] == found["recall_id"]

    bad = await session.call_tool("store", {"content": ""})
    assert bad.isError and "content" in _text(bad)
    unknown = await session.call_tool("get_entity", {"entity_id": stored["id"]})
    assert unknown.isError and "not found" in _text(unknown).lower()
    # The server is still there after both.
    assert (await call(session, "recall", query="lunch"))["hits"]

    resources = {str(r.uri) for r in (await session.list_resources()).resources}
    assert {"ww://session/episodes/recent", "ww://session/stats"} <= resources
    recent = await read_json(session, "ww://session/episodes/recent")
    assert stored["id"] in {episode["id"] for episode in recent["items"]}
    stats = await read_json(session, "ww://session/stats")
    assert stats["episodes"] == 2
