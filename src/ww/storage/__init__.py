"""Storage ports and their backends."""

from ww.storage.factory import build_stores
from ww.storage.ports import (
    AccessUpdate,
    EpisodePage,
    InvalidCursorError,
    RecordStore,
    ScoredId,
    StoreUnavailableError,
    VectorIndex,
    VectorItem,
)
from ww.storage.qdrant.edge import QdrantEdgeIndex
from ww.storage.sqlite.records import SQLiteRecordStore

__all__ = [
    "AccessUpdate",
    "EpisodePage",
    "InvalidCursorError",
    "QdrantEdgeIndex",
    "RecordStore",
    "SQLiteRecordStore",
    "ScoredId",
    "StoreUnavailableError",
    "VectorIndex",
    "VectorItem",
    "build_stores",
]
