"""Pick the backends named by the configuration."""

from __future__ import annotations

from ww.config import Settings
from ww.storage.ports import RecordStore, VectorIndex
from ww.storage.qdrant_edge import QdrantEdgeIndex
from ww.storage.sqlite import SQLiteRecordStore

__all__ = ["build_stores"]


def build_stores(settings: Settings) -> tuple[RecordStore, VectorIndex]:
    """The embedded tier: ``$WW_DATA_DIR/ww.sqlite3`` and ``$WW_DATA_DIR/vectors``."""
    data = settings.data_dir
    return (
        SQLiteRecordStore(data / "ww.sqlite3"),
        QdrantEdgeIndex(data / "vectors", settings.embedding_dimension),
    )
