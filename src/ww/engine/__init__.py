"""The storage-agnostic memory engine."""

from __future__ import annotations

from ww.config import Settings
from ww.embedding import EmbeddingService, load_embedder
from ww.engine.dynamics import Fsrs
from ww.engine.memory import (
    Clock,
    EmbeddingMismatchError,
    MemoryEngine,
    ReconcileReport,
    utc_now,
)
from ww.engine.recall import Preset
from ww.storage import build_stores

__all__ = [
    "Clock",
    "EmbeddingMismatchError",
    "MemoryEngine",
    "Preset",
    "ReconcileReport",
    "build_engine",
    "utc_now",
]


def build_engine(
    settings: Settings,
    *,
    clock: Clock = utc_now,
    embedder: EmbeddingService | None = None,
) -> MemoryEngine:
    """Wire an engine from settings; call ``await engine.open()`` before use."""
    if embedder is None:
        embedder = EmbeddingService(
            load_embedder(settings),
            cache_size=settings.embedding_cache_size,
            batch_size=settings.embedding_batch_size,
        )
    records, vectors = build_stores(settings)
    return MemoryEngine(
        records=records,
        vectors=vectors,
        embedder=embedder,
        fsrs=Fsrs(settings.fsrs_default_stability, settings.fsrs_retention_target),
        clock=clock,
        candidates=settings.recall_candidates,
    )
