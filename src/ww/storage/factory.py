"""Pick the backends named by the configuration."""

from __future__ import annotations

from ww.config import ConfigError, Settings
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
    "build_vector_index",
]

# Qdrant Edge directory (embedded tier) per memory type; a Qdrant server gets one collection
# per memory type instead.
_EDGE_DIRS = {"episodes": "vectors", "entities": "vectors-entities", "skills": "vectors-skills"}


def build_vector_index(settings: Settings, memory_type: str = "episodes") -> VectorIndex:
    """A Qdrant server when ``WW_QDRANT_URL`` is set, else Qdrant Edge in the data dir."""
    if settings.qdrant_url is None:
        return QdrantEdgeIndex(
            settings.data_dir / _EDGE_DIRS[memory_type], settings.embedding_dimension
        )
    try:
        # Imported here: qdrant-client comes with the optional "server" extra.
        from ww.storage.qdrant_server import QdrantServerIndex
    except ImportError as exc:
        raise ConfigError(
            f"WW_QDRANT_URL={settings.qdrant_url!r} needs qdrant-client: "
            'pip install "world-weaver[server]"'
        ) from exc
    api_key = settings.qdrant_api_key
    return QdrantServerIndex(
        settings.embedding_dimension,
        url=settings.qdrant_url,
        # An empty WW_QDRANT_API_KEY= line (as in .env.example) means no key.
        api_key=(api_key.get_secret_value() or None) if api_key is not None else None,
        memory_type=memory_type,
        hnsw_m=settings.qdrant_hnsw_m,
        hnsw_ef_construct=settings.qdrant_hnsw_ef_construct,
        on_disk=settings.qdrant_on_disk,
        timeout_s=settings.qdrant_timeout_s,
    )


def build_stores(settings: Settings) -> tuple[RecordStore, VectorIndex]:
    """Records in ``$WW_DATA_DIR/ww.sqlite3``; vectors as ``build_vector_index`` decides."""
    return SQLiteRecordStore(settings.data_dir / "ww.sqlite3"), build_vector_index(settings)


def _sqlite_db(records: RecordStore) -> SQLiteRecordStore:
    if not isinstance(records, SQLiteRecordStore):
        raise TypeError("entities and skills need the SQLite record store (embedded tier)")
    return records


def build_entity_stores(
    settings: Settings, records: RecordStore
) -> tuple[EntityStore, VectorIndex]:
    """Entities share the record store's SQLite file and have their own vector collection."""
    return (
        SQLiteEntityStore(_sqlite_db(records).db),
        build_vector_index(settings, "entities"),
    )


def build_skill_stores(settings: Settings, records: RecordStore) -> tuple[SkillStore, VectorIndex]:
    """Skills share the record store's SQLite file and have their own vector collection."""
    return (
        SQLiteSkillStore(_sqlite_db(records).db),
        build_vector_index(settings, "skills"),
    )


def build_consolidation_store(records: RecordStore) -> ConsolidationStore:
    """Consolidation's links and bookkeeping live in the record store's SQLite file."""
    return SQLiteConsolidationStore(_sqlite_db(records).db)
