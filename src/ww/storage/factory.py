"""Pick the backends named by the configuration."""

from __future__ import annotations

from ww.config import Settings
from ww.storage.ports import RecordStore, VectorIndex
from ww.storage.qdrant_edge import QdrantEdgeIndex
from ww.storage.sqlite import SQLiteRecordStore

__all__ = ["build_record_store", "build_stores"]


def build_stores(settings: Settings) -> tuple[RecordStore, VectorIndex]:
    """The embedded tier: ``$WW_DATA_DIR/ww.sqlite3`` and ``$WW_DATA_DIR/vectors``; with
    ``WW_NEO4J_URI`` set, the records live in Neo4j instead."""
    data = settings.data_dir
    return (
        build_record_store(settings),
        QdrantEdgeIndex(data / "vectors", settings.embedding_dimension),
    )


def build_record_store(settings: Settings) -> RecordStore:
    if settings.neo4j_uri is not None:
        # Imported here so the embedded tier runs without the ``server`` extra installed.
        from ww.storage.neo4j import Neo4jRecordStore

        password = settings.neo4j_password
        return Neo4jRecordStore(
            settings.neo4j_uri,
            user=settings.neo4j_user,
            password=password.get_secret_value() if password is not None else None,
            database=settings.neo4j_database,
            pool_size=settings.neo4j_pool_size,
        )
    return SQLiteRecordStore(settings.data_dir / "ww.sqlite3")
