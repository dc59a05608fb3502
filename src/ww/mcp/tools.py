"""The MCP tools and resources: each tool a thin call of the SDK, described once in
``TOOLS``: its parameters are the fields of the API's request model for the operation
(``ww.mcp.params``), its answer the API's answer model (so each tool has an output schema,
and answers structured content as well as JSON text).

Every tool takes an optional ``session_id``; without it the call acts in the session the
server was started with (``--session``, ``WW_SESSION_ID``), or the World Weaver server's
own default.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any
from uuid import UUID

from mcp.server.fastmcp import FastMCP
from pydantic import BaseModel, Field

from ww.mcp.params import SESSION_PARAM, Group, body, signature, signature_of, split
from ww.models import Episode
from ww.models.api import (
    EntityList,
    EpisodeCreateBody,
    FeedbackRequest,
    FeedbackResponse,
    RelationList,
)
from ww.models.consolidation import ConsolidationOptions, ConsolidationReport
from ww.models.procedural import (
    HowTo,
    HowToRequest,
    Skill,
    SkillCreate,
    SkillExecutionCreate,
    SkillExecutionResult,
    SkillRecallRequest,
    SkillRecallResult,
)
from ww.models.semantic import (
    Entity,
    EntityCreate,
    EntityRecallRequest,
    EntityRecallResult,
    Relation,
    RelationCreate,
)
from ww.models.unified import UnifiedRecallRequest, UnifiedRecallResult
from ww.sdk import AsyncWorldWeaver
from ww.sdk.resources import Entities

__all__ = ["DEFAULT_SESSION", "MODELS", "RECENT_EPISODES", "TOOLS", "Tool", "register"]

# The World Weaver server's own default session (ww.config.Settings.session_id): what a
# client configured with no session acts in, named here for the statistics resource.
DEFAULT_SESSION = "default"
RECENT_EPISODES = 20

JSON = "application/json"
Read = Callable[[str | None], Awaitable[str]]

# What a tool does with the client (already in the call's session) and its arguments.
Call = Callable[[AsyncWorldWeaver, dict[str, Any]], Awaitable[Any]]


@dataclass(frozen=True, slots=True)
class Tool:
    name: str
    description: str
    params: tuple[Group, ...]
    answer: type[BaseModel]
    call: Call
    # The request model whose fields the tool takes (tests/mcp checks the schemas match).
    model: type[BaseModel] | None = None


def _id(name: str, what: str) -> inspect.Parameter:
    annotation = Annotated[UUID, Field(description=f"The {what}'s id.")]
    return inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, annotation=annotation)


ENTITY_ID = _id("entity_id", "entity")
SKILL_ID = _id("skill_id", "skill")


def sends(
    model: type[BaseModel], answer: type[BaseModel], name: str, description: str, call: Call
) -> Tool:
    """A tool taking ``model``'s fields (and ``session_id``)."""
    return Tool(name, description, (model, SESSION_PARAM), answer, call, model)


def whole(model: type[BaseModel], method: Callable[[AsyncWorldWeaver], Any]) -> Call:
    """Send ``model`` as the body of the SDK ``method``."""

    async def call(client: AsyncWorldWeaver, given: dict[str, Any]) -> Any:
        return await method(client)(body(model, given))

    return call


def first(model: type[BaseModel], key: str, method: Callable[[AsyncWorldWeaver], Any]) -> Call:
    """Call the SDK ``method`` with ``model``'s field ``key`` first, the rest as keywords."""

    async def call(client: AsyncWorldWeaver, given: dict[str, Any]) -> Any:
        value, rest = split(model, given, key)
        return await method(client)(value, **rest)

    return call


async def _feedback(client: AsyncWorldWeaver, given: dict[str, Any]) -> FeedbackResponse:
    request = body(FeedbackRequest, given)
    # Mapping's key is invariant: the SDK takes UUID | str keys, the model holds UUIDs.
    rewards: dict[UUID | str, float] | None = (
        None if request.rewards is None else {k: v for k, v in request.rewards.items()}
    )
    return await client.feedback(request.recall_id, reward=request.reward, rewards=rewards)


async def _relate(client: AsyncWorldWeaver, given: dict[str, Any]) -> Relation:
    target, fields = split(RelationCreate, given, "target_id")
    return await client.entities.relate(given["entity_id"], target, **fields)


async def _record_run(client: AsyncWorldWeaver, given: dict[str, Any]) -> SkillExecutionResult:
    success, fields = split(SkillExecutionCreate, given, "success")
    return await client.skills.execute(given["skill_id"], success=success, **fields)


async def _get_entity(client: AsyncWorldWeaver, given: dict[str, Any]) -> Entity:
    return await client.entities.get(given["entity_id"])


async def _list_entities(client: AsyncWorldWeaver, given: dict[str, Any]) -> EntityList:
    return await client.entities.list(**given)


async def _relations(client: AsyncWorldWeaver, given: dict[str, Any]) -> RelationList:
    return await client.entities.relations(given["entity_id"])


TOOLS: tuple[Tool, ...] = (
    sends(
        EpisodeCreateBody,
        Episode,
        "store",
        "Store an episode: something that happened, as the agent experienced it.",
        whole(EpisodeCreateBody, lambda c: c.episodes.create),
    ),
    sends(
        UnifiedRecallRequest,
        UnifiedRecallResult,
        "recall",
        "Recall episodes, entities and skills for one query, ranked together. Pass the "
        "answer's recall_id to feedback to say what helped.",
        first(UnifiedRecallRequest, "query", lambda c: c.recall),
    ),
    sends(
        FeedbackRequest,
        FeedbackResponse,
        "feedback",
        "Reward what a recall returned (1: helped, 0: did not), so recall learns.",
        _feedback,
    ),
    sends(
        EntityCreate,
        Entity,
        "create_entity",
        "Store an entity: a person, project, tool, concept or fact the agent knows.",
        whole(EntityCreate, lambda c: c.entities.create),
    ),
    Tool("get_entity", "One entity by id.", (ENTITY_ID, SESSION_PARAM), Entity, _get_entity),
    Tool(
        "list_entities",
        "A page of entities; pass next_cursor back as cursor for the next page.",
        (signature_of(Entities.list.build), SESSION_PARAM),
        EntityList,
        _list_entities,
    ),
    sends(
        EntityRecallRequest,
        EntityRecallResult,
        "search_entities",
        "The entities that best match a query.",
        first(EntityRecallRequest, "query", lambda c: c.entities.recall),
    ),
    Tool(
        "create_relation",
        "Relate one entity to another (entity_id -> target_id).",
        (ENTITY_ID, RelationCreate, SESSION_PARAM),
        Relation,
        _relate,
        RelationCreate,
    ),
    Tool(
        "list_relations",
        "The relations of an entity.",
        (ENTITY_ID, SESSION_PARAM),
        RelationList,
        _relations,
    ),
    sends(
        SkillCreate,
        Skill,
        "create_skill",
        "Store a skill: how to do a task, as ordered steps or a script.",
        whole(SkillCreate, lambda c: c.skills.create),
    ),
    sends(
        SkillRecallRequest,
        SkillRecallResult,
        "recall_skills",
        "The skills that best match a query.",
        first(SkillRecallRequest, "query", lambda c: c.skills.recall),
    ),
    sends(
        HowToRequest,
        HowTo,
        "how_to",
        "The best live skill for a task, with its steps.",
        first(HowToRequest, "task", lambda c: c.skills.how_to),
    ),
    Tool(
        "record_skill_run",
        "Record one run of a skill and whether it worked, so its ranking learns.",
        (SKILL_ID, SkillExecutionCreate, SESSION_PARAM),
        SkillExecutionResult,
        _record_run,
        SkillExecutionCreate,
    ),
    sends(
        ConsolidationOptions,
        ConsolidationReport,
        "consolidate",
        "Consolidate the session: cluster episodes into entities, merge near-duplicates, "
        "decay relations, archive what is forgotten (dry_run reports without changing).",
        whole(ConsolidationOptions, lambda c: c.consolidate),
    ),
)

MODELS: dict[str, type[BaseModel]] = {t.name: t.model for t in TOOLS if t.model is not None}


def register(mcp: FastMCP, client: AsyncWorldWeaver) -> None:
    """Add World Weaver's tools and resources to ``mcp``, each calling ``client``."""

    def acting(session_id: str | None) -> AsyncWorldWeaver:
        return client.session(session_id) if session_id else client

    for tool in TOOLS:
        mcp.add_tool(_function(tool, acting), name=tool.name, description=tool.description)
    _resources(mcp, client, acting)


def _function(
    tool: Tool, acting: Callable[[str | None], AsyncWorldWeaver]
) -> Callable[..., Awaitable[Any]]:
    """The tool as FastMCP wants it: a function whose signature is the tool's schema."""

    async def run(session_id: str | None = None, **given: Any) -> Any:
        return await tool.call(acting(session_id), given)

    params = signature(tool.params, tool.answer)
    run.__signature__ = params  # type: ignore[attr-defined]
    run.__annotations__ = {p.name: p.annotation for p in params.parameters.values()}
    run.__annotations__["return"] = tool.answer
    run.__name__ = tool.name
    return run


def _resources(
    mcp: FastMCP, client: AsyncWorldWeaver, acting: Callable[[str | None], AsyncWorldWeaver]
) -> None:
    """Each resource twice: for the configured session (``ww://session/...``) and for a
    named one (``ww://sessions/{session_id}/...``)."""

    async def recent(session_id: str | None) -> str:
        page = await acting(session_id).episodes.list(limit=RECENT_EPISODES)
        return page.model_dump_json()

    async def stats(session_id: str | None) -> str:
        named = session_id or client.session_id or DEFAULT_SESSION
        found = await client.sessions.stats(named)
        return found.model_dump_json()

    readers: tuple[tuple[str, Read, str], ...] = (
        ("episodes/recent", recent, f"The {RECENT_EPISODES} newest episodes"),
        ("stats", stats, "What the session holds: episodes, entities, skills, last activity"),
    )
    for path, read, what in readers:
        name = path.replace("/", "_")
        mcp.resource(
            f"ww://session/{path}",
            name=name,
            description=f"{what} (configured session).",
            mime_type=JSON,
        )(_configured(read))
        mcp.resource(
            f"ww://sessions/{{session_id}}/{path}",
            name=f"session_{name}",
            description=f"{what} (a named session).",
            mime_type=JSON,
        )(read)


def _configured(read: Read) -> Callable[[], Awaitable[str]]:
    async def configured() -> str:
        return await read(None)

    return configured
