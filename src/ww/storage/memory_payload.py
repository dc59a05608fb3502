"""Vector payloads of entities and skills, in the keys the episode payload already indexes.

The ``VectorIndex`` port filters with an ``EpisodeFilter``; rather than widen that protocol
(another backend implements it), entities and skills reuse its indexed keys in their own
collections: ``project`` holds the entity type or the skill domain, and ``archived`` is 1
for a closed entity version or a deprecated skill. The common filters (current entities of
a type, live skills of a domain) therefore run inside the index.
"""

from __future__ import annotations

from typing import Any

from ww.models import MemoryType
from ww.models.procedural import Skill
from ww.models.semantic import Entity, EntityType
from ww.storage.payload import to_micros

__all__ = ["entity_payload", "entity_type_key", "skill_payload"]


def entity_type_key(entity_type: EntityType | None) -> str | None:
    return None if entity_type is None else entity_type.value


def entity_payload(entity: Entity) -> dict[str, Any]:
    return {
        "session_id": entity.session_id,
        "memory_type": MemoryType.ENTITY.value,
        "timestamp": to_micros(entity.valid_from),
        "project": entity.entity_type.value,
        "archived": 0 if entity.valid_to is None else 1,
    }


def skill_payload(skill: Skill) -> dict[str, Any]:
    return {
        "session_id": skill.session_id,
        "memory_type": MemoryType.SKILL.value,
        "timestamp": to_micros(skill.created_at),
        "project": skill.domain,
        "archived": int(skill.deprecated),
    }
