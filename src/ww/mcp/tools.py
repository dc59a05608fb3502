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
from operator import attrgetter
from typing import Annotated, Any
from uuid import UUID

from mcp.server.fastmcp import FastMCP
from pydantic import BaseModel, Field

from ww.mcp.params import SESSION_PARAM, Group, body, signature, signature_of
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

__all__ = [
    "DEFAULT_SESSION",
    "DESCRIPTIONS",
    "MODELS",
    "RECENT_EPISODES",
    "TOOLS",
    "Tool",
    "register",
]

# The World Weaver server's own default session (ww.config.Settings.session_id): what a
# client configured with no session acts in, named here for the statistics resource.
DEFAULT_SESSION = "default"
RECENT_EPISODES = 20

JSON = "application/json"
Read = Callable[[str | None], Awaitable[str]]

# What a tool does with the client (in the call's session), its request (the tool's model
# built from the arguments, or None) and the arguments themselves (ids, list filters).
Call = Callable[[AsyncWorldWeaver, Any, dict[str, Any]], Awaitable[Any]]


@dataclass(frozen=True, slots=True)
class Tool:
    """One tool: its ``params`` (besides ``session_id``: request models, whose fields it
    takes, and single parameters), its ``answer`` model, and what it does."""

    name: str
    params: tuple[Group, ...]
    answer: type[BaseModel]
    call: Call

    @property
    def description(self) -> str:
        return DESCRIPTIONS[self.name]

    @property
    def model(self) -> type[BaseModel] | None:
        """The request model whose fields the tool takes (tests/mcp checks the schemas)."""
        found = [p for p in self.params if isinstance(p, type)]
        return found[0] if found else None


def _id(name: str, what: str) -> inspect.Parameter:
    annotation = Annotated[UUID, Field(description=f"The {what}'s id.")]
    return inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, annotation=annotation)


ENTITY_ID = _id("entity_id", "entity")
SKILL_ID = _id("skill_id", "skill")


def whole(method: str) -> Call:
    """Send the request as the body of the SDK method at ``method`` (``"episodes.create"``)."""

    async def call(client: AsyncWorldWeaver, request: Any, given: dict[str, Any]) -> Any:
        return await attrgetter(method)(client)(request)

    return call


def first(key: str, method: str, *ids: str) -> Call:
    """Call the SDK method at ``method`` with the path ``ids`` given, then the request's
    field ``key``, then its other fields given, as keywords."""

    async def call(client: AsyncWorldWeaver, request: Any, given: dict[str, Any]) -> Any:
        rest = request.model_dump(exclude_unset=True, exclude={key})
        path = [given[name] for name in ids]
        return await attrgetter(method)(client)(*path, getattr(request, key), **rest)

    return call


def by_id(method: str, name: str) -> Call:
    """Call the SDK method at ``method`` with the id ``name`` given, and nothing else."""

    async def call(client: AsyncWorldWeaver, request: Any, given: dict[str, Any]) -> Any:
        return await attrgetter(method)(client)(given[name])

    return call


async def _feedback(
    client: AsyncWorldWeaver, request: FeedbackRequest, given: dict[str, Any]
) -> FeedbackResponse:
    # Mapping's key is invariant: the SDK takes UUID | str keys, the model holds UUIDs.
    rewards: dict[UUID | str, float] | None = (
        None if request.rewards is None else {k: v for k, v in request.rewards.items()}
    )
    return await client.feedback(request.recall_id, reward=request.reward, rewards=rewards)


async def _record_run(
    client: AsyncWorldWeaver, request: SkillExecutionCreate, given: dict[str, Any]
) -> SkillExecutionResult:
    fields = request.model_dump(exclude_unset=True, exclude={"success"})
    return await client.skills.execute(given["skill_id"], success=request.success, **fields)


async def _list_entities(client: AsyncWorldWeaver, request: None, given: dict[str, Any]) -> Any:
    return await client.entities.list(**given)


DESCRIPTIONS = {
    "store": "Store an episode: something that happened, as the agent experienced it.",
    "recall": "Recall episodes, entities and skills for one query, ranked together. Pass "
    "the answer's recall_id to feedback to say what helped.",
    "feedback": "Reward what a recall returned (1: helped, 0: did not), so recall learns.",
    "create_entity": "Store an entity: a person, project, tool, concept or fact.",
    "get_entity": "One entity by id.",
    "list_entities": "A page of entities; pass next_cursor back as cursor for the next.",
    "search_entities": "The entities that best match a query.",
    "create_relation": "Relate one entity to another (entity_id -> target_id).",
    "list_relations": "The relations of an entity.",
    "create_skill": "Store a skill: how to do a task, as ordered steps or a script.",
    "recall_skills": "The skills that best match a query.",
    "how_to": "The best live skill for a task, with its steps.",
    "record_skill_run": "Record one run of a skill and whether it worked, so it ranks better.",
    "consolidate": "Consolidate the session: cluster episodes into entities, merge "
    "near-duplicates, decay relations, archive what is forgotten (dry_run: only report).",
}

_ENTITY_LIST = signature_of(Entities.list.build)

_RELATE = first("target_id", "entities.relate", "entity_id")

TOOLS: tuple[Tool, ...] = (
    Tool("store", (EpisodeCreateBody,), Episode, whole("episodes.create")),
    Tool("recall", (UnifiedRecallRequest,), UnifiedRecallResult, first("query", "recall")),
    Tool("feedback", (FeedbackRequest,), FeedbackResponse, _feedback),
    Tool("create_entity", (EntityCreate,), Entity, whole("entities.create")),
    Tool("get_entity", (ENTITY_ID,), Entity, by_id("entities.get", "entity_id")),
    Tool("list_entities", (_ENTITY_LIST,), EntityList, _list_entities),
    Tool(
        "search_entities",
        (EntityRecallRequest,),
        EntityRecallResult,
        first("query", "entities.recall"),
    ),
    Tool("create_relation", (ENTITY_ID, RelationCreate), Relation, _RELATE),
    Tool("list_relations", (ENTITY_ID,), RelationList, by_id("entities.relations", "entity_id")),
    Tool("create_skill", (SkillCreate,), Skill, whole("skills.create")),
    Tool(
        "recall_skills", (SkillRecallRequest,), SkillRecallResult, first("query", "skills.recall")
    ),
    Tool("how_to", (HowToRequest,), HowTo, first("task", "skills.how_to")),
    Tool("record_skill_run", (SKILL_ID, SkillExecutionCreate), SkillExecutionResult, _record_run),
    Tool("consolidate", (ConsolidationOptions,), ConsolidationReport, whole("consolidate")),
)

MODELS: dict[str, type[BaseModel]] = {t.name: m for t in TOOLS if (m := t.model) is not None}


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
        request = body(tool.model, given) if tool.model is not None else None
        return await tool.call(acting(session_id), request, given)

    params = signature((*tool.params, SESSION_PARAM), tool.answer)
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
