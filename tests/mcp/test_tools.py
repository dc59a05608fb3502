"""Every tool, called in process through FastMCP (the same path an MCP request takes
after the transport) on an embedded engine: each reaches its API operation and answers
the API's model as structured content."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from fastapi import FastAPI
from mcp.server.fastmcp import FastMCP
from mcp.server.fastmcp.exceptions import ToolError

from tests.sdk.conftest import app  # noqa: F401 (the fixture)
from ww.mcp.server import build
from ww.sdk import AsyncWorldWeaver

SESSION = "mcp-tools"


@pytest.fixture
async def mcp(app: FastAPI) -> AsyncIterator[FastMCP]:  # noqa: F811
    async with AsyncWorldWeaver.embedded(app=app, session_id=SESSION) as client:
        yield build(client)


async def use(mcp: FastMCP, tool: str, **arguments: Any) -> Any:
    result = await mcp.call_tool(tool, arguments)
    assert isinstance(result, tuple), result
    return result[1]


async def test_every_tool_reaches_its_operation(mcp: FastMCP) -> None:
    paris = await use(mcp, "create_entity", name="Paris", entity_type="LOCATION")
    france = await use(mcp, "create_entity", name="France", entity_type="LOCATION")
    assert (await use(mcp, "get_entity", entity_id=paris["id"]))["name"] == "Paris"
    listed = await use(mcp, "list_entities", limit=1)
    assert len(listed["items"]) == 1 and listed["next_cursor"]
    by_type = await use(mcp, "list_entities", entity_type="PERSON")
    assert by_type["items"] == []
    found = await use(mcp, "search_entities", query="Paris", limit=1)
    assert found["hits"][0]["entity"]["id"] == paris["id"]

    part = await use(
        mcp, "create_relation", entity_id=paris["id"], target_id=france["id"], weight=0.9
    )
    assert (part["target_id"], part["weight"]) == (france["id"], 0.9)
    relations = await use(mcp, "list_relations", entity_id=paris["id"])
    assert [r["id"] for r in relations["items"]] == [part["id"]]

    steps = [{"order": 1, "action": "systemctl restart web"}]
    skill = await use(mcp, "create_skill", name="restart-web", task="restart the web", steps=steps)
    assert skill["session_id"] == SESSION
    recalled = await use(mcp, "recall_skills", query="restart the web service")
    assert recalled["hits"][0]["skill"]["id"] == skill["id"]
    advice = await use(mcp, "how_to", task="the web service is down")
    assert advice["skill"]["id"] == skill["id"]
    run = await use(mcp, "record_skill_run", skill_id=skill["id"], success=False, failed_step=1)
    assert run["execution"]["failed_step"] == 1

    await use(mcp, "store", content="Paris is where the team met")
    everything = await use(mcp, "recall", query="Paris", memory_types=["episode", "entity"])
    assert {hit["memory_type"] for hit in everything["hits"]} == {"episode", "entity"}
    first = everything["hits"][0]["id"]
    learned = await use(mcp, "feedback", recall_id=everything["recall_id"], rewards={first: 1.0})
    assert [change["memory_id"] for change in learned["changes"]] == [first]
    report = await use(mcp, "consolidate", dry_run=True, min_cluster_size=2)
    assert report["dry_run"] is True


async def test_a_models_own_check_is_a_tool_error(mcp: FastMCP) -> None:
    with pytest.raises(ToolError, match="steps or a script"):
        await mcp.call_tool("create_skill", {"name": "n", "task": "t"})
    with pytest.raises(ToolError, match="only meaningful when success is false"):
        await mcp.call_tool(
            "record_skill_run",
            {"skill_id": "00000000-0000-0000-0000-000000000000", "success": True, "failed_step": 1},
        )
