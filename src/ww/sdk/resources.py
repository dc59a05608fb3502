"""The operations of the REST API, each described once (``docs/api.md`` documents them;
the models are the server's own, from ``ww.models``)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, Generic, TypeVar
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
from ww.sdk._ops import Body, Resource, create, delete, get, op, page, pages, patch

__all__ = ["Admin", "Entities", "Episodes", "Sessions", "Skills"]

M = TypeVar("M")  # Sync or Async (ww.sdk._ops)
K = TypeVar("K")  # the kind's model
R = TypeVar("R")  # its recall result

_EPISODES = "/api/v1/episodes"
_ENTITIES = "/api/v1/entities"
_SKILLS = "/api/v1/skills"
_SESSIONS = "/api/v1/sessions"
_ADMIN = "/api/v1/admin"
_NDJSON = "application/x-ndjson"


class _Kind(Resource[M], Generic[M, K, R]):
    """What every kind of memory answers alike, at ``path``: create, get, update (the
    fields given change), delete and recall."""

    path: str
    model: type[K]
    recall_result: type[R]

    @op
    def create(
        self, body: Body = None, /, *, idempotency_key: str | None = None, **fields: Any
    ) -> Call[K]:
        """Store a memory: the server's create model, a mapping, or keyword fields."""
        return create(self.path, self.model, body, fields, idempotency_key)

    @op
    def get(self, memory_id: UUID | str, /) -> Call[K]:
        return get(f"{self.path}/{memory_id}", self.model)

    @op
    def update(self, memory_id: UUID | str, body: Body = None, /, **fields: Any) -> Call[K]:
        return patch(f"{self.path}/{memory_id}", self.model, body, fields)

    @op
    def delete(self, memory_id: UUID | str, /) -> Call[None]:
        return delete(f"{self.path}/{memory_id}")

    @op
    def recall(
        self, query: str, /, *, idempotency_key: str | None = None, **options: Any
    ) -> Call[R]:
        """The memories of this kind that best match ``query`` (options: the kind's recall
        request, e.g. ``limit``)."""
        fields = {"query": query, **options}
        return create(f"{self.path}/recall", self.recall_result, None, fields, idempotency_key)


class Episodes(_Kind[M, Episode, RecallResult]):
    """``client.episodes``: what happened. ``create(content="...", speaker="user")`` or an
    ``EpisodeCreate``; ``on_conflict`` decides what an existing ``external_id`` does;
    ``recall`` takes ``limit``, ``preset``, ``learn``, ``filters``, ``at`` (when the question
    is asked: time words and recency are read from it) and ``min_relevance`` (drop hits less
    relevant; every hit carries its calibrated ``relevance``), see ``RecallRequest``."""

    path, model, recall_result = _EPISODES, Episode, RecallResult

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
        flt = {
            "time_from": time_from,
            "time_to": time_to,
            "outcome": outcome,
            "project": project,
            "speaker": speaker,
            "metadata": json.dumps(dict(metadata)) if metadata else None,
            "include_archived": include_archived,
        }
        return page(_EPISODES, EpisodeList, limit, cursor, flt)

    list_all = pages(list, lambda page: page.items)


class Entities(_Kind[M, Entity, EntityRecallResult]):
    """``client.entities``: what the agent knows, with versions and relations."""

    path, model, recall_result = _ENTITIES, Entity, EntityRecallResult

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
        flt = {"entity_type": entity_type, "as_of": as_of, "include_closed": include_closed}
        return page(_ENTITIES, EntityList, limit, cursor, flt)

    list_all = pages(list, lambda page: page.items)


class Skills(_Kind[M, Skill, SkillRecallResult]):
    """``client.skills``: how to do things, and how well each way has worked."""

    path, model, recall_result = _SKILLS, Skill, SkillRecallResult

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
        flt = {"domain": domain, "include_deprecated": include_deprecated}
        return page(_SKILLS, SkillList, limit, cursor, flt)

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
        return page(_SESSIONS, SessionList, limit, cursor, {})

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
        self, data: bytes | Iterable[bytes], /, *, reembed: ReembedMode | str = ReembedMode.AUTO
    ) -> Call[ImportReport]:
        """Upsert an export by id: importing one file twice leaves the same state, so a
        retry is safe. ``data``: the bytes, or chunks of them in an iterable that can be
        iterated again (a retry sends them again)."""
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
