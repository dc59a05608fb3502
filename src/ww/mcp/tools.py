"""The MCP tools and resources: each a thin call of the SDK, its parameters taken from the
API's request models (``ww.mcp.params``), its answer the API's answer model (so each tool
has an output schema and structured content as well as JSON text).

Every tool takes an optional ``session_id``; without it the call acts in the session the
server was started with (``--session``, ``WW_SESSION_ID``), or the World Weaver server's
own default.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Annotated, Any
from uuid import UUID

from mcp.server.fastmcp import FastMCP
from pydantic import Field

from ww.mcp.params import SESSION_PARAM, body, signature_of, takes
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

__all__ = ["DEFAULT_SESSION", "RECENT_EPISODES", "register"]

# The World Weaver server's own default session (ww.config.Settings.session_id): what a
# client configured with no session acts in, named here for the statistics resource.
DEFAULT_SESSION = "default"
RECENT_EPISODES = 20


def _param(name: str, annotation: Any) -> inspect.Parameter:
    return inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, annotation=annotation)


ENTITY_ID = _param("entity_id", Annotated[UUID, Field(description="The entity's id.")])
SKILL_ID = _param("skill_id", Annotated[UUID, Field(description="The skill's id.")])


def register(mcp: FastMCP, client: AsyncWorldWeaver) -> None:
    """Add World Weaver's tools and resources to ``mcp``, each calling ``client``."""

    def acting(session_id: str | None) -> AsyncWorldWeaver:
        return client.session(session_id) if session_id else client

    @mcp.tool()
    @takes(EpisodeCreateBody, SESSION_PARAM)
    async def store(session_id: str | None = None, **given: Any) -> Episode:
        """Store an episode: something that happened, as the agent experienced it."""
        return await acting(session_id).episodes.create(body(EpisodeCreateBody, given))

    @mcp.tool()
    @takes(UnifiedRecallRequest, SESSION_PARAM)
    async def recall(session_id: str | None = None, **given: Any) -> UnifiedRecallResult:
        """Recall episodes, entities and skills for one query, ranked together. Pass the
        answer's recall_id to feedback to say what helped."""
        request = body(UnifiedRecallRequest, given)
        options = request.model_dump(exclude_unset=True, exclude={"query"})
        return await acting(session_id).recall(request.query, **options)

    @mcp.tool()
    @takes(FeedbackRequest, SESSION_PARAM)
    async def feedback(session_id: str | None = None, **given: Any) -> FeedbackResponse:
        """Reward what a recall returned (1: helped, 0: did not), so recall learns."""
        request = body(FeedbackRequest, given)
        # Mapping's key is invariant: the SDK takes UUID | str keys, the model holds UUIDs.
        rewards: dict[UUID | str, float] | None = (
            None if request.rewards is None else {k: v for k, v in request.rewards.items()}
        )
        return await acting(session_id).feedback(
            request.recall_id, reward=request.reward, rewards=rewards
        )

    @mcp.tool()
    @takes(EntityCreate, SESSION_PARAM)
    async def create_entity(session_id: str | None = None, **given: Any) -> Entity:
        """Store an entity: a person, project, tool, concept or fact the agent knows."""
        return await acting(session_id).entities.create(body(EntityCreate, given))

    @mcp.tool()
    @takes(ENTITY_ID, SESSION_PARAM)
    async def get_entity(entity_id: UUID, session_id: str | None = None) -> Entity:
        """One entity by id."""
        return await acting(session_id).entities.get(entity_id)

    @mcp.tool()
    @takes(signature_of(Entities.list.build), SESSION_PARAM)
    async def list_entities(session_id: str | None = None, **given: Any) -> EntityList:
        """A page of entities; pass next_cursor back as cursor for the next page."""
        return await acting(session_id).entities.list(**given)

    @mcp.tool()
    @takes(EntityRecallRequest, SESSION_PARAM)
    async def search_entities(session_id: str | None = None, **given: Any) -> EntityRecallResult:
        """The entities that best match a query."""
        request = body(EntityRecallRequest, given)
        options = request.model_dump(exclude_unset=True, exclude={"query"})
        return await acting(session_id).entities.recall(request.query, **options)

    @mcp.tool()
    @takes(ENTITY_ID, RelationCreate, SESSION_PARAM)
    async def create_relation(
        entity_id: UUID, session_id: str | None = None, **given: Any
    ) -> Relation:
        """Relate one entity to another (entity_id -> target_id)."""
        request = body(RelationCreate, given)
        fields = request.model_dump(exclude_unset=True, exclude={"target_id"})
        return await acting(session_id).entities.relate(entity_id, request.target_id, **fields)

    @mcp.tool()
    @takes(ENTITY_ID, SESSION_PARAM)
    async def list_relations(entity_id: UUID, session_id: str | None = None) -> RelationList:
        """The relations of an entity."""
        return await acting(session_id).entities.relations(entity_id)

    @mcp.tool()
    @takes(SkillCreate, SESSION_PARAM)
    async def create_skill(session_id: str | None = None, **given: Any) -> Skill:
        """Store a skill: how to do a task, as ordered steps or a script."""
        return await acting(session_id).skills.create(body(SkillCreate, given))

    @mcp.tool()
    @takes(SkillRecallRequest, SESSION_PARAM)
    async def recall_skills(session_id: str | None = None, **given: Any) -> SkillRecallResult:
        """The skills that best match a query."""
        request = body(SkillRecallRequest, given)
        options = request.model_dump(exclude_unset=True, exclude={"query"})
        return await acting(session_id).skills.recall(request.query, **options)

    @mcp.tool()
    @takes(HowToRequest, SESSION_PARAM)
    async def how_to(session_id: str | None = None, **given: Any) -> HowTo:
        """The best live skill for a task, with its steps."""
        request = body(HowToRequest, given)
        options = request.model_dump(exclude_unset=True, exclude={"task"})
        return await acting(session_id).skills.how_to(request.task, **options)

    @mcp.tool()
    @takes(SKILL_ID, SkillExecutionCreate, SESSION_PARAM)
    async def record_skill_run(
        skill_id: UUID, session_id: str | None = None, **given: Any
    ) -> SkillExecutionResult:
        """Record one run of a skill and whether it worked, so its ranking learns."""
        request = body(SkillExecutionCreate, given)
        fields = request.model_dump(exclude_unset=True, exclude={"success"})
        return await acting(session_id).skills.execute(skill_id, success=request.success, **fields)

    @mcp.tool()
    @takes(ConsolidationOptions, SESSION_PARAM)
    async def consolidate(session_id: str | None = None, **given: Any) -> ConsolidationReport:
        """Consolidate the session: cluster episodes into entities, merge near-duplicates,
        decay relations, archive what is forgotten (dry_run reports without changing)."""
        return await acting(session_id).consolidate(body(ConsolidationOptions, given))

    _resources(mcp, client, acting)


def _resources(
    mcp: FastMCP, client: AsyncWorldWeaver, acting: Callable[[str | None], AsyncWorldWeaver]
) -> None:
    async def recent(session_id: str | None) -> str:
        page = await acting(session_id).episodes.list(limit=RECENT_EPISODES)
        return page.model_dump_json()

    async def stats(session_id: str | None) -> str:
        named = session_id or client.session_id or DEFAULT_SESSION
        found = await client.sessions.stats(named)
        return found.model_dump_json()

    @mcp.resource("ww://episodes/recent", mime_type="application/json")
    async def recent_episodes() -> str:
        """The newest episodes of the configured session."""
        return await recent(None)

    @mcp.resource("ww://sessions/{session_id}/episodes/recent", mime_type="application/json")
    async def session_recent_episodes(session_id: str) -> str:
        """The newest episodes of a session."""
        return await recent(session_id)

    @mcp.resource("ww://session/stats", mime_type="application/json")
    async def session_stats() -> str:
        """What the configured session holds: episodes, entities, skills, last activity."""
        return await stats(None)

    @mcp.resource("ww://sessions/{session_id}/stats", mime_type="application/json")
    async def named_session_stats(session_id: str) -> str:
        """What a session holds."""
        return await stats(session_id)
