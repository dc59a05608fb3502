"""Constraints and indexes of the Neo4j side stores (entities, skills, learning state,
consolidation), created with the record store's own in ``Neo4jRecordStore.open()``.

Composite keys (feedback per recall and memory, Hebbian edges, links) are one ``key``
property: uniqueness on a single property is what Neo4j Community enforces, and a unique
constraint is what makes ``MERGE`` safe against a concurrent writer.
"""

from __future__ import annotations

__all__ = ["SIDE_SCHEMA"]

SIDE_SCHEMA: tuple[str, ...] = (
    # entities and relations (neo4j/entities.py)
    "CREATE CONSTRAINT ww_entity_id IF NOT EXISTS FOR (e:WwEntity) REQUIRE e.id IS UNIQUE",
    "CREATE INDEX ww_entity_session IF NOT EXISTS "
    "FOR (e:WwEntity) ON (e.session_id, e.valid_from, e.id)",
    "CREATE INDEX ww_entity_lineage IF NOT EXISTS FOR (e:WwEntity) ON (e.lineage_id)",
    "CREATE INDEX ww_relation_id IF NOT EXISTS FOR ()-[r:WW_REL]-() ON (r.id)",
    "CREATE INDEX ww_relation_session IF NOT EXISTS FOR ()-[r:WW_REL]-() ON (r.session_id)",
    # skills (neo4j/skills.py)
    "CREATE CONSTRAINT ww_skill_id IF NOT EXISTS FOR (s:WwSkill) REQUIRE s.id IS UNIQUE",
    "CREATE INDEX ww_skill_session IF NOT EXISTS "
    "FOR (s:WwSkill) ON (s.session_id, s.created_at, s.id)",
    "CREATE INDEX ww_skill_version IF NOT EXISTS FOR (v:WwSkillVersion) ON (v.skill_id)",
    "CREATE INDEX ww_skill_execution IF NOT EXISTS "
    "FOR (x:WwSkillExecution) ON (x.skill_id, x.executed_at)",
    "CREATE INDEX ww_skill_execution_id IF NOT EXISTS FOR (x:WwSkillExecution) ON (x.id)",
    "CREATE INDEX ww_skill_execution_session IF NOT EXISTS "
    "FOR (x:WwSkillExecution) ON (x.session_id)",
    # learning state (neo4j/learning.py)
    "CREATE CONSTRAINT ww_recall_id IF NOT EXISTS FOR (r:WwRecall) REQUIRE r.recall_id IS UNIQUE",
    "CREATE INDEX ww_recall_session IF NOT EXISTS FOR (r:WwRecall) ON (r.session_id, r.created_at)",
    "CREATE CONSTRAINT ww_feedback_key IF NOT EXISTS FOR (f:WwFeedback) REQUIRE f.key IS UNIQUE",
    "CREATE INDEX ww_feedback_recall IF NOT EXISTS FOR (f:WwFeedback) ON (f.recall_id)",
    "CREATE INDEX ww_feedback_session IF NOT EXISTS FOR (f:WwFeedback) ON (f.session_id)",
    # Recall reads the feedback its candidates got (the query-tied value).
    "CREATE INDEX ww_feedback_memory IF NOT EXISTS FOR (f:WwFeedback) "
    "ON (f.session_id, f.memory_id)",
    "CREATE CONSTRAINT ww_memstate_key IF NOT EXISTS FOR (m:WwMemState) REQUIRE m.key IS UNIQUE",
    "CREATE INDEX ww_memstate_session IF NOT EXISTS FOR (m:WwMemState) ON (m.session_id)",
    "CREATE CONSTRAINT ww_hebbian_key IF NOT EXISTS FOR (h:WwHebbian) REQUIRE h.key IS UNIQUE",
    "CREATE INDEX ww_hebbian_a IF NOT EXISTS FOR (h:WwHebbian) ON (h.session_id, h.a)",
    "CREATE INDEX ww_hebbian_b IF NOT EXISTS FOR (h:WwHebbian) ON (h.session_id, h.b)",
    "CREATE CONSTRAINT ww_encoder_session IF NOT EXISTS "
    "FOR (x:WwEncoder) REQUIRE x.session_id IS UNIQUE",
    # consolidation (neo4j/consolidation.py)
    "CREATE CONSTRAINT ww_link_key IF NOT EXISTS FOR (k:WwLink) REQUIRE k.key IS UNIQUE",
    "CREATE INDEX ww_link_source IF NOT EXISTS FOR (k:WwLink) ON (k.session_id, k.source_id)",
    "CREATE INDEX ww_link_target IF NOT EXISTS FOR (k:WwLink) ON (k.session_id, k.target_id)",
    "CREATE CONSTRAINT ww_consolidated_id IF NOT EXISTS "
    "FOR (c:WwConsolidated) REQUIRE c.entity_id IS UNIQUE",
    "CREATE INDEX ww_consolidated_session IF NOT EXISTS FOR (c:WwConsolidated) ON (c.session_id)",
    # episodes by external_id, for creates with on_conflict (Neo4jRecordStore)
    "CREATE INDEX ww_episode_external IF NOT EXISTS "
    "FOR (e:WwEpisode) ON (e.session_id, e.external_id)",
    # idempotency keys (neo4j/idempotency.py)
    "CREATE CONSTRAINT ww_idempotency_key IF NOT EXISTS "
    "FOR (k:WwIdempotency) REQUIRE k.key IS UNIQUE",
    "CREATE INDEX ww_idempotency_session IF NOT EXISTS FOR (k:WwIdempotency) ON (k.session_id)",
    "CREATE INDEX ww_idempotency_at IF NOT EXISTS FOR (k:WwIdempotency) ON (k.at)",
    # control plane (neo4j/control.py)
    "CREATE CONSTRAINT ww_control_id IF NOT EXISTS FOR (c:WwControl) REQUIRE c.id IS UNIQUE",
    "CREATE CONSTRAINT ww_control_flag IF NOT EXISTS "
    "FOR (f:WwControlFlag) REQUIRE f.name IS UNIQUE",
    "CREATE CONSTRAINT ww_control_audit IF NOT EXISTS "
    "FOR (a:WwControlAudit) REQUIRE a.id IS UNIQUE",
)
