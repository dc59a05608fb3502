"""The storage-agnostic memory engine."""

from __future__ import annotations

from ww.config import ConfigError, Settings
from ww.control.flags import Flags, load_flags
from ww.embedding import EmbeddingService, load_embedder
from ww.engine.adaptive import (
    FeedbackOutcome,
    LearningParams,
    MemoryNotInRecallError,
    RecallNotFoundError,
)
from ww.engine.dynamics import Fsrs
from ww.engine.memory import (
    Clock,
    EmbeddingMismatchError,
    MemoryEngine,
    ReconcileReport,
    utc_now,
)
from ww.engine.recall import Preset
from ww.storage import SQLiteRecordStore, build_stores
from ww.storage.sqlite_learning import SQLiteLearningStore

__all__ = [
    "Clock",
    "EmbeddingMismatchError",
    "FeedbackOutcome",
    "MemoryEngine",
    "MemoryNotInRecallError",
    "Preset",
    "RecallNotFoundError",
    "ReconcileReport",
    "build_engine",
    "utc_now",
]


def build_engine(
    settings: Settings,
    *,
    clock: Clock = utc_now,
    embedder: EmbeddingService | None = None,
    flags: Flags | None = None,
) -> MemoryEngine:
    """Wire an engine from settings; call ``await engine.open()`` before use."""
    if embedder is None:
        embedder = EmbeddingService(
            load_embedder(settings),
            cache_size=settings.embedding_cache_size,
            batch_size=settings.embedding_batch_size,
        )
    records, vectors = build_stores(settings)
    if not isinstance(records, SQLiteRecordStore):
        raise ConfigError("the learning store needs the SQLite record store (embedded tier)")
    return MemoryEngine(
        records=records,
        vectors=vectors,
        # Learning state shares the record store's database file and connections.
        learning=SQLiteLearningStore(records.db),
        embedder=embedder,
        fsrs=Fsrs(settings.fsrs_default_stability, settings.fsrs_retention_target),
        clock=clock,
        candidates=settings.recall_candidates,
        flags=flags or load_flags(),
        params=LearningParams.from_settings(settings),
    )
