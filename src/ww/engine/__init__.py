"""The storage-agnostic memory engine."""

from __future__ import annotations

from datetime import datetime
from typing import TypeVar

from ww.config import Settings, VectorBackend
from ww.control.circuits import Circuits
from ww.control.flags import Flags, load_flags
from ww.embedding import EmbeddingService, load_embedder
from ww.engine.consolidation import Consolidator
from ww.engine.dynamics import Fsrs
from ww.engine.kind_memory import Beside
from ww.engine.memory import (
    Clock,
    EmbeddingMismatchError,
    MemoryEngine,
    ReconcileReport,
    utc_now,
)
from ww.engine.procedural import ProceduralMemory
from ww.engine.recall import Preset
from ww.engine.recall_learning import (
    FeedbackOutcome,
    LearningParams,
    MemoryNotInRecallError,
    RecallNotFoundError,
)
from ww.engine.semantic import SemanticMemory
from ww.storage import VectorIndex, build_stores
from ww.storage.factory import (
    build_consolidation_store,
    build_entity_stores,
    build_skill_stores,
    learning_store,
)

__all__ = [
    "Clock",
    "Consolidator",
    "EmbeddingMismatchError",
    "FeedbackOutcome",
    "MemoryEngine",
    "MemoryNotInRecallError",
    "Preset",
    "ProceduralMemory",
    "RecallNotFoundError",
    "ReconcileReport",
    "SemanticMemory",
    "build_consolidator",
    "build_engine",
    "build_procedural",
    "build_semantic",
    "utc_now",
]


S = TypeVar("S")


def build_engine(
    settings: Settings,
    *,
    clock: Clock = utc_now,
    embedder: EmbeddingService | None = None,
    flags: Flags | None = None,
) -> MemoryEngine:
    """Wire an engine from settings; call ``await engine.open()`` before use.

    The stores and the embedder sit behind the circuit breakers of ``engine.circuits``
    (thresholds from ``WW_CIRCUIT_*``, timed by ``clock``)."""
    if embedder is None:
        embedder = EmbeddingService(
            load_embedder(settings),
            cache_size=settings.embedding_cache_size,
            batch_size=settings.embedding_batch_size,
        )
    circuits = Circuits.from_settings(settings, clock)
    records, vectors = build_stores(settings)
    records = circuits.guard("database", records)
    return MemoryEngine(
        records=records,
        vectors=circuits.guard("vectors", vectors),
        # Learning state shares the record store's database and connections.
        learning=learning_store(records),
        embedder=circuits.guard("embedder", embedder),
        fsrs=Fsrs(settings.fsrs_default_stability, settings.fsrs_retention_target),
        clock=clock,
        candidates=settings.recall_candidates,
        flags=flags or load_flags(),
        params=LearningParams.from_settings(settings),
        circuits=circuits,
        # One process owns an embedded data directory: its clean close can be trusted.
        close_mark=settings.neo4j_uri is None and settings.vector_store is VectorBackend.EDGE,
    )


def _vectors_guarded(engine: MemoryEngine, stores: tuple[S, VectorIndex]) -> tuple[S, VectorIndex]:
    """A kind's store (already behind the record store's circuit) and its vector index,
    put behind the engine's ``vectors`` circuit."""
    store, vectors = stores
    return store, engine.circuits.guard("vectors", vectors)


def build_semantic(settings: Settings, engine: MemoryEngine) -> SemanticMemory:
    """Entities beside ``engine``: its record database, clock, embedder and FSRS; its own vectors.

    Deleting a session through the engine deletes the session's entities too.
    """
    store, vectors = _vectors_guarded(engine, build_entity_stores(settings, engine.records))
    semantic = SemanticMemory(store=store, vectors=vectors, beside=Beside.engine(engine))
    engine.session_deleters.append(semantic.delete_session)
    return semantic


def build_procedural(settings: Settings, engine: MemoryEngine) -> ProceduralMemory:
    """Skills beside ``engine``, as :func:`build_semantic`."""
    store, vectors = _vectors_guarded(engine, build_skill_stores(settings, engine.records))
    procedural = ProceduralMemory(store=store, vectors=vectors, beside=Beside.engine(engine))
    engine.session_deleters.append(procedural.delete_session)
    return procedural


def build_consolidator(engine: MemoryEngine, semantic: SemanticMemory) -> Consolidator:
    """Consolidation over ``engine``'s episodes into ``semantic``'s entities; deleting a
    session through the engine deletes its consolidation links too."""

    async def prune_episode_edges(
        session_id: str, now: datetime, _tau_days: float, below: float, dry_run: bool
    ) -> tuple[int, int]:
        # Episode edges decay on read with the learning settings' time constant, so the
        # sweep has nothing to decay (0) and only prunes what has faded under ``below``.
        return 0, await engine.recall_learning.prune_edges(session_id, now, below, dry_run)

    consolidator = Consolidator(
        engine,
        semantic,
        build_consolidation_store(engine.records),
        episode_edge_decay=prune_episode_edges,
    )
    engine.session_deleters.append(consolidator.delete_session)
    return consolidator
