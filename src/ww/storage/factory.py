"""Pick the backends named by the configuration."""

from __future__ import annotations

from ww.config import Settings
from ww.storage.consolidation_ports import ConsolidationStore
from ww.storage.entity_ports import EntityStore
from ww.storage.ports import RecordStore, VectorIndex
from ww.storage.qdrant_edge import QdrantEdgeIndex
from ww.storage.skill_ports import SkillStore
from ww.storage.sqlite import SQLiteRecordStore
from ww.storage.sqlite_consolidation import SQLiteConsolidationStore
from ww.storage.sqlite_entities import SQLiteEntityStore
from ww.storage.sqlite_skills import SQLiteSkillStore

__all__ = [
    "build_consolidation_store",
    "build_entity_stores",
    "build_skill_stores",
    "build_stores",
]


def build_stores(settings: Settings) -> tuple[RecordStore, VectorIndex]:
    """The embedded tier: ``$WW_DATA_DIR/ww.sqlite3`` and ``$WW_DATA_DIR/vectors``."""
    data = settings.data_dir
    return (
        SQLiteRecordStore(data / "ww.sqlite3"),
        QdrantEdgeIndex(data / "vectors", settings.embedding_dimension),
    )


def _sqlite_db(records: RecordStore) -> SQLiteRecordStore:
    if not isinstance(records, SQLiteRecordStore):
        raise TypeError("entities and skills need the SQLite record store (embedded tier)")
    return records


def build_entity_stores(
    settings: Settings, records: RecordStore
) -> tuple[EntityStore, VectorIndex]:
    """Entities share the record store's SQLite file; vectors: ``$WW_DATA_DIR/vectors-entities``."""
    return (
        SQLiteEntityStore(_sqlite_db(records).db),
        QdrantEdgeIndex(settings.data_dir / "vectors-entities", settings.embedding_dimension),
    )


def build_skill_stores(settings: Settings, records: RecordStore) -> tuple[SkillStore, VectorIndex]:
    """Skills share the record store's SQLite file; vectors: ``$WW_DATA_DIR/vectors-skills``."""
    return (
        SQLiteSkillStore(_sqlite_db(records).db),
        QdrantEdgeIndex(settings.data_dir / "vectors-skills", settings.embedding_dimension),
    )


def build_consolidation_store(records: RecordStore) -> ConsolidationStore:
    """Consolidation's links and bookkeeping live in the record store's SQLite file."""
    return SQLiteConsolidationStore(_sqlite_db(records).db)
