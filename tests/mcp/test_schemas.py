"""The tools' input schemas are the API's request models, field for field, and the
pieces that make them so behave (``ww.mcp.params``). In process: nothing is sent."""

from __future__ import annotations

import importlib
import inspect
import sys
from typing import Any

import pytest
from mcp.types import Tool
from pydantic import ValidationError

from tests.mcp.scenario import TOOLS
from ww.mcp.__main__ import main
from ww.mcp.params import body
from ww.mcp.server import Target, _loopback, build
from ww.mcp.tools import MODELS
from ww.models import EpisodeCreate
from ww.models.procedural import SkillCreate
from ww.sdk import AsyncWorldWeaver
from ww.sdk.resources import Entities

# Parameters a tool has beside its model's fields: the per-call session, an id in the path.
OWN = {"session_id", "entity_id", "skill_id"}


@pytest.fixture
async def tools() -> dict[str, Tool]:
    # A client that is never called: listing tools sends nothing.
    async with AsyncWorldWeaver("http://127.0.0.1:9") as client:
        listed = await build(client).list_tools()
    return {tool.name: tool for tool in listed}


async def test_every_tool_is_listed_with_a_session_and_an_output_schema(
    tools: dict[str, Tool],
) -> None:
    assert set(tools) == TOOLS
    for tool in tools.values():
        assert "session_id" in tool.inputSchema["properties"], tool.name
        assert "session_id" not in tool.inputSchema.get("required", [])
        assert tool.outputSchema is not None and tool.description


@pytest.mark.parametrize("name", sorted(MODELS))
async def test_a_tools_parameters_are_its_request_models_fields(
    name: str, tools: dict[str, Tool]
) -> None:
    schema, model = tools[name].inputSchema, MODELS[name].model_json_schema()
    own = {k: v for k, v in schema["properties"].items() if k not in OWN}
    assert own == model["properties"]
    assert [r for r in schema.get("required", []) if r not in OWN] == model.get("required", [])
    assert model.get("$defs", {}).items() <= schema.get("$defs", {}).items()


async def test_list_entities_takes_the_sdks_filters(tools: dict[str, Tool]) -> None:
    sdk = inspect.signature(Entities.list.build).parameters
    assert set(tools["list_entities"].inputSchema["properties"]) == (set(sdk) - {"self"}) | {
        "session_id"
    }


def test_body_leaves_the_defaults_unset() -> None:
    given: dict[str, Any] = {"content": "x", "importance": 0.5, "speaker": None, "metadata": {}}
    made = body(EpisodeCreate, {**given, "session_id": "s"})
    assert made.model_fields_set == {"content"}
    assert body(EpisodeCreate, {**given, "importance": 0.9}).model_fields_set == {
        "content",
        "importance",
    }


def test_body_runs_the_models_own_checks() -> None:
    with pytest.raises(ValidationError, match="steps or a script"):
        body(SkillCreate, {"name": "n", "task": "t", "steps": [], "script": None})


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.0.0.2", True),
        ("::1", True),
        ("localhost", True),
        ("0.0.0.0", False),
        ("192.168.1.4", False),
        ("example.org", False),
    ],
)
def test_loopback_hosts(host: str, loopback: bool) -> None:
    assert _loopback(host) is loopback


def test_a_data_dir_needs_embedded(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--data-dir", "/tmp/nowhere"])
    assert exited.value.code == 2
    assert "--data-dir needs --embedded" in capsys.readouterr().err


def test_a_targets_repr_shows_no_key() -> None:
    assert "sk-0123456789" not in repr(Target(api_key="sk-0123456789"))


def test_without_the_mcp_extra_the_module_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in [n for n in sys.modules if n == "mcp" or n.startswith("mcp.")]:
        monkeypatch.setitem(sys.modules, name, None)
    for name in ("ww.mcp.__main__", "ww.mcp.server", "ww.mcp.tools"):
        monkeypatch.delitem(sys.modules, name)
    with pytest.raises(SystemExit, match=r'pip install "world-weaver\[mcp\]"'):
        importlib.import_module("ww.mcp.__main__")
