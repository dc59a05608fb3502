"""The operations of the REST API, each described once (``docs/api.md`` documents them;
the models are the server's own, from ``ww.models``)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, TypeVar
from uuid import UUID

from ww.models import Episode, EpisodeCreate, Outcome, RecallResult, SessionStats
from ww.models.api import (
    BatchCreated,
    EntityHistory,
    EntityList,
    EpisodeList,
    ExecutionList,
    ImportReport,
    OnConflict,
    ReembedMode,
    RelationList,
    SessionDeleted,
    SessionList,
    SkillList,
    SkillVersions,
)
from ww.models.procedural import HowTo, Skill, SkillExecutionResult, SkillRecallResult
from ww.models.semantic import Entity, EntityRecallResult, EntityType, Relation, SpreadResult
from ww.sdk._core import Call, parse_as
from ww.sdk._ops import Body, Resource, create, delete, get, op, pages, patch

__all__ = ["Admin", "Entities", "Episodes", "Sessions", "Skills"]

M = TypeVar("M")  # Sync or Async (ww.sdk._ops)

_EPISODES = "/api/v1/episodes"
_ENTITIES = "/api/v1/entities"
_SKILLS = "/api/v1/skills"
_SESSIONS = "/api/v1/sessions"
_ADMIN = "/api/v1/admin"
_NDJSON = "application/x-ndjson"


class Episodes(Resource[M]):
    """``client.episodes``: what happened."""

    @op
    def create(
        self, body: Body = None, /, *, idempotency_key: str | None = None, **fields: Any
    ) -> Call[Episode]:
        """Store an episode: ``create(content="...", speaker="user")`` or an
        ``EpisodeCreate``; ``on_conflict`` decides what an existing ``external_id`` does."""
        return create(_EPISODES, Episode, body, fields, idempotency_key)

    @op
    def create_batch(
        self,
        episodes: Sequence[EpisodeCreate | Mapping[str, Any]],
        /,
        *,
        on_conflict: OnConflict | None = None,
        idempotency_key: str | None = None,
    ) -> Call[BatchCreated]:
        fields = {"episodes": list(episodes), "on_conflict": on_conflict}
        return create(f"{_EPISODES}/batch", BatchCreated, None, fields, idempotency_key)

    @op
    def get(self, episode_id: UUID | str, /) -> Call[Episode]:
        return get(f"{_EPISODES}/{episode_id}", Episode)

    @op
    def update(self, episode_id: UUID | str, body: Body = None, /, **fields: Any) -> Call[Episode]:
        return patch(f"{_EPISODES}/{episode_id}", Episode, body, fields)

    @op
    def delete(self, episode_id: UUID | str, /) -> Call[None]:
        return delete(f"{_EPISODES}/{episode_id}")

    @op
    def recall(
        self, query: str, /, *, idempotency_key: str | None = None, **options: Any
    ) -> Call[RecallResult]:
        """``limit``, ``preset``, ``learn`` and ``filters`` as in ``RecallRequest``."""
        fields = {"query": query, **options}
        return create(f"{_EPISODES}/recall", RecallResult, None, fields, idempotency_key)

    @op
    def mark_important(self, episode_id: UUID | str, /, importance: float = 1.0) -> Call[Episode]:
        path = f"{_EPISODES}/{episode_id}/mark-important"
        return create(path, Episode, None, {"importance": importance}, None)

    @op
    def list(
        self,
        *,
        limit: int = 50,
        cursor: str | None = None,
        time_from: datetime | None = None,
        time_to: datetime | None = None,
        outcome: Outcome | None = None,
        project: str | None = None,
        speaker: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        include_archived: bool = False,
    ) -> Call[EpisodeList]:
        """One page, newest first; ``list_all`` with the same filters walks every page."""
        params = {
            "limit": limit,
            "cursor": cursor,
            "time_from": time_from,
            "time_to": time_to,
            "outcome": outcome,
            "project": project,
            "speaker": speaker,
            "metadata": json.dumps(dict(metadata)) if metadata else None,
            "include_archived": include_archived,
        }
        return get(_EPISODES, EpisodeList, params)

    list_all = pages(list, lambda page: page.items)


class Entities(Resource[M]):
    """``client.entities``: what the agent knows, with versions and relations."""

    @op
    def create(
        self, body: Body = None, /, *, idempotency_key: str | None = None, **fields: Any
    ) -> Call[Entity]:
        return create(_ENTITIES, Entity, body, fields, idempotency_key)

    @op
    def get(self, entity_id: UUID | str, /) -> Call[Entity]:
        return get(f"{_ENTITIES}/{entity_id}", Entity)

    @op
    def update(self, entity_id: UUID | str, body: Body = None, /, **fields: Any) -> Call[Entity]:
        return patch(f"{_ENTITIES}/{entity_id}", Entity, body, fields)

    @op
    def delete(self, entity_id: UUID | str, /) -> Call[None]:
        return delete(f"{_ENTITIES}/{entity_id}")

    @op
    def recall(self, query: str, /, **options: Any) -> Call[EntityRecallResult]:
        fields = {"query": query, **options}
        return create(f"{_ENTITIES}/recall", EntityRecallResult, None, fields, None)

    @op
    def spread(self, seed_id: UUID | str, /, **options: Any) -> Call[SpreadResult]:
        """Spreading activation from ``seed_id`` (``depth``, ``threshold``, ``decay``)."""
        fields = {"seed_id": seed_id, **options}
        return create(f"{_ENTITIES}/spread-activation", SpreadResult, None, fields, None)

    @op
    def supersede(self, entity_id: UUID | str, body: Body = None, /, **fields: Any) -> Call[Entity]:
        """Close this version and return the new one (fields left out are copied)."""
        return create(f"{_ENTITIES}/{entity_id}/supersede", Entity, body, fields, None)

    @op
    def history(self, entity_id: UUID | str, /) -> Call[EntityHistory]:
        return get(f"{_ENTITIES}/{entity_id}/history", EntityHistory)

    @op
    def relate(
        self, entity_id: UUID | str, target_id: UUID | str, /, **fields: Any
    ) -> Call[Relation]:
        """A relation from ``entity_id`` to ``target_id`` (``relation_type``, ``weight``)."""
        path = f"{_ENTITIES}/{entity_id}/relations"
        return create(path, Relation, None, {"target_id": target_id, **fields}, None)

    @op
    def relations(self, entity_id: UUID | str, /) -> Call[RelationList]:
        return get(f"{_ENTITIES}/{entity_id}/relations", RelationList)

    @op
    def unrelate(self, entity_id: UUID | str, relation_id: UUID | str, /) -> Call[None]:
        return delete(f"{_ENTITIES}/{entity_id}/relations/{relation_id}")

    @op
    def list(
        self,
        *,
        limit: int = 50,
        cursor: str | None = None,
        entity_type: EntityType | None = None,
        as_of: datetime | None = None,
        include_closed: bool = False,
    ) -> Call[EntityList]:
        params = {
            "limit": limit,
            "cursor": cursor,
            "entity_type": entity_type,
            "as_of": as_of,
            "include_closed": include_closed,
        }
        return get(_ENTITIES, EntityList, params)

    list_all = pages(list, lambda page: page.items)


class Skills(Resource[M]):
    """``client.skills``: how to do things, and how well each way has worked."""

    @op
    def create(
        self, body: Body = None, /, *, idempotency_key: str | None = None, **fields: Any
    ) -> Call[Skill]:
        return create(_SKILLS, Skill, body, fields, idempotency_key)

    @op
    def get(self, skill_id: UUID | str, /) -> Call[Skill]:
        return get(f"{_SKILLS}/{skill_id}", Skill)

    @op
    def update(self, skill_id: UUID | str, body: Body = None, /, **fields: Any) -> Call[Skill]:
        return patch(f"{_SKILLS}/{skill_id}", Skill, body, fields)

    @op
    def delete(self, skill_id: UUID | str, /) -> Call[None]:
        return delete(f"{_SKILLS}/{skill_id}")

    @op
    def recall(self, query: str, /, **options: Any) -> Call[SkillRecallResult]:
        fields = {"query": query, **options}
        return create(f"{_SKILLS}/recall", SkillRecallResult, None, fields, None)

    @op
    def how_to(self, task: str, /, **options: Any) -> Call[HowTo]:
        """The best live skill for ``task`` (``domain``, ``learn``), with its steps."""
        return create(f"{_SKILLS}/how-to", HowTo, None, {"task": task, **options}, None)

    @op
    def versions(self, skill_id: UUID | str, /) -> Call[SkillVersions]:
        return get(f"{_SKILLS}/{skill_id}/versions", SkillVersions)

    @op
    def execute(
        self, skill_id: UUID | str, /, *, success: bool, **fields: Any
    ) -> Call[SkillExecutionResult]:
        """Record one run of the skill (``duration_ms``, ``failed_step``, ``error``)."""
        path = f"{_SKILLS}/{skill_id}/execute"
        return create(path, SkillExecutionResult, None, {"success": success, **fields}, None)

    @op
    def executions(self, skill_id: UUID | str, /, *, limit: int = 50) -> Call[ExecutionList]:
        return get(f"{_SKILLS}/{skill_id}/executions", ExecutionList, {"limit": limit})

    @op
    def deprecate(self, skill_id: UUID | str, /, **fields: Any) -> Call[Skill]:
        """Deprecate the skill; ``replaced_by`` names its successor (None clears it)."""
        return create(f"{_SKILLS}/{skill_id}/deprecate", Skill, None, fields, None)

    @op
    def list(
        self,
        *,
        limit: int = 50,
        cursor: str | None = None,
        domain: str | None = None,
        include_deprecated: bool = False,
    ) -> Call[SkillList]:
        params = {
            "limit": limit,
            "cursor": cursor,
            "domain": domain,
            "include_deprecated": include_deprecated,
        }
        return get(_SKILLS, SkillList, params)

    list_all = pages(list, lambda page: page.items)


class Sessions(Resource[M]):
    """``client.sessions``: the operator's view of sessions."""

    @op
    def stats(self, session_id: str, /) -> Call[SessionStats]:
        return get(f"{_SESSIONS}/{session_id}", SessionStats)

    @op
    def delete(self, session_id: str, /) -> Call[SessionDeleted]:
        """Delete everything the session holds; the answer counts what went."""
        return Call("DELETE", f"{_SESSIONS}/{session_id}", parse_as(SessionDeleted))

    @op
    def list(self, *, limit: int = 100, cursor: str | None = None) -> Call[SessionList]:
        return get(_SESSIONS, SessionList, {"limit": limit, "cursor": cursor})

    list_all = pages(list, lambda page: page.sessions)


class Admin(Resource[M]):
    """``client.admin``: export and import (``docs/export-format.md``); admin credentials."""

    @op
    def export(self, *, session_id: str | None = None, vectors: bool = True) -> Call[bytes]:
        """Every session (or one) as JSON Lines, whole, as bytes."""
        params = {"session_id": session_id, "vectors": vectors}
        return Call("GET", f"{_ADMIN}/export", _content, params=params)

    @op
    def import_(
        self, data: bytes, /, *, reembed: ReembedMode | str = ReembedMode.AUTO
    ) -> Call[ImportReport]:
        """Upsert an export by id: importing one file twice leaves the same state, so a
        retry is safe."""
        return Call(
            "POST",
            f"{_ADMIN}/import",
            parse_as(ImportReport),
            params={"reembed": str(reembed)},
            content=data,
            headers={"Content-Type": _NDJSON},
            upsert=True,
        )


def _content(response: Any) -> bytes:
    data: bytes = response.content
    return data
