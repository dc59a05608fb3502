"""Pick the backends named by the configuration."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING

from ww.config import ConfigError, Settings, VectorBackend
from ww.storage.diskspace import DiskGuard, guard_for
from ww.storage.guarded import alike, unwrap
from ww.storage.ports import RecordStore, VectorIndex
from ww.storage.ports.consolidation import ConsolidationStore
from ww.storage.ports.control import ControlStore
from ww.storage.ports.entities import EntityStore
from ww.storage.ports.idempotency import IdempotencyStore
from ww.storage.ports.learning import LearningStore
from ww.storage.ports.skills import SkillStore
from ww.storage.qdrant.edge import QdrantEdgeIndex
from ww.storage.sqlite.consolidation import SQLiteConsolidationStore
from ww.storage.sqlite.control import SQLiteControlStore
from ww.storage.sqlite.entities import SQLiteEntityStore
from ww.storage.sqlite.idempotency import SQLiteIdempotencyStore
from ww.storage.sqlite.learning import SQLiteLearningStore
from ww.storage.sqlite.records import SQLiteRecordStore
from ww.storage.sqlite.skills import SQLiteSkillStore

if TYPE_CHECKING:
    from ww.storage.neo4j.driver import ConnectionOptions
    from ww.storage.neo4j.records import Neo4jRecordStore

__all__ = [
    "build_consolidation_store",
    "build_entity_stores",
    "build_record_store",
    "build_skill_stores",
    "build_stores",
    "build_vector_index",
    "check_extras",
    "control_store",
    "disk_guard",
    "disk_startup_problem",
    "entity_store",
    "idempotency_store",
    "learning_store",
    "skill_store",
]

# Qdrant Edge directory (embedded tier) per memory type; a Qdrant server gets one collection
# per memory type instead.
_EDGE_DIRS = {"episodes": "vectors", "entities": "vectors-entities", "skills": "vectors-skills"}


SERVER_EXTRA_INSTALL = 'pip install -e ".[api,server]"'


def _installed(module: str) -> bool:
    # Imported, not looked up: a package that is present but cannot be imported is missing too.
    try:
        importlib.import_module(module)
    except ImportError:
        return False
    return True


def check_extras(settings: Settings) -> None:
    """Raise ``ConfigError`` in one line when a setting needs the ``server`` extra and one of
    its packages is not installed, naming the settings and the install command."""
    needs: list[tuple[str, str, str]] = []
    if settings.neo4j_uri is not None:
        needs.append(("WW_NEO4J_URI", "neo4j", "neo4j"))
    if settings.vector_store is VectorBackend.QDRANT:
        needs.append(("WW_QDRANT_URL", "qdrant_client", "qdrant-client"))
    missing = [(name, package) for name, module, package in needs if not _installed(module)]
    if missing:
        names = " and ".join(name for name, _ in missing)
        packages = ", ".join(package for _, package in missing)
        verb = "needs" if len(missing) == 1 else "need"
        raise ConfigError(
            f"{names} {verb} the server extra ({packages} not installed): {SERVER_EXTRA_INSTALL}"
        )


def disk_guard(settings: Settings) -> DiskGuard:
    """The free-space guard of the data directory, shared by everything in this process."""
    return guard_for(settings.data_dir, settings.min_free_disk_mb)


def disk_startup_problem(settings: Settings) -> str | None:
    """One line refusing start-up when the data directory's file system lacks the room the
    embedded stores need to open (None when there is room, or nothing is local)."""
    edge = len(_EDGE_DIRS) if settings.vector_store is VectorBackend.EDGE else 0
    if settings.neo4j_uri is not None and edge == 0:
        return None
    return disk_guard(settings).startup_error(edge)


def build_vector_index(settings: Settings, memory_type: str = "episodes") -> VectorIndex:
    """The index ``WW_VECTOR_BACKEND`` names: by default a Qdrant server when
    ``WW_QDRANT_URL`` is set, else Qdrant Edge in the data dir."""
    backend = settings.vector_store
    if backend is VectorBackend.EDGE:
        return QdrantEdgeIndex(
            settings.data_dir / _EDGE_DIRS[memory_type],
            settings.embedding_dimension,
            disk=disk_guard(settings),
        )
    check_extras(settings)
    if backend is VectorBackend.NEO4J:
        return _neo4j_vectors(settings, memory_type)
    assert settings.qdrant_url is not None  # vector_store checked it
    # Imported here: qdrant-client comes with the optional "server" extra.
    from ww.storage.qdrant.server import QdrantServerIndex

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


def _neo4j_options(settings: Settings) -> ConnectionOptions:
    password = settings.neo4j_password
    return {
        "user": settings.neo4j_user,
        "password": password.get_secret_value() if password is not None else None,
        "database": settings.neo4j_database,
        "pool_size": settings.neo4j_pool_size,
    }


def _neo4j_vectors(settings: Settings, memory_type: str) -> VectorIndex:
    # Imported here so the embedded tier runs without the ``server`` extra installed.
    from ww.storage.neo4j.vectors import Neo4jVectorIndex

    assert settings.neo4j_uri is not None  # vector_store checked it
    return Neo4jVectorIndex(
        settings.neo4j_uri,
        settings.embedding_dimension,
        memory_type=memory_type,
        index_threshold=settings.neo4j_vector_index_threshold,
        oversample=settings.neo4j_vector_oversample,
        **_neo4j_options(settings),
    )


def build_stores(settings: Settings) -> tuple[RecordStore, VectorIndex]:
    """Records as ``build_record_store`` decides; vectors as ``build_vector_index`` decides."""
    return build_record_store(settings), build_vector_index(settings)


def build_record_store(settings: Settings) -> RecordStore:
    if settings.neo4j_uri is not None:
        check_extras(settings)
        # Imported here so the embedded tier runs without the ``server`` extra installed.
        from ww.storage.neo4j.records import Neo4jRecordStore

        return Neo4jRecordStore(settings.neo4j_uri, **_neo4j_options(settings))
    return SQLiteRecordStore(
        settings.data_dir / "ww.sqlite3",
        disk=disk_guard(settings),
        keyword_sessions=settings.keyword_index_sessions,
    )


def _neo4j(records: RecordStore) -> Neo4jRecordStore | None:
    """The record store when it is Neo4j's. Checked by module so the embedded tier never
    imports the driver."""
    if type(records).__module__ != "ww.storage.neo4j.records":
        return None
    from ww.storage.neo4j.records import Neo4jRecordStore

    assert isinstance(records, Neo4jRecordStore)
    return records


def _sqlite_db(records: RecordStore) -> SQLiteRecordStore:
    if not isinstance(records, SQLiteRecordStore):
        raise TypeError(f"no side stores for a {type(records).__name__}")
    return records


@dataclass(frozen=True, slots=True)
class _SideStores:
    """Each side store's builder, bound to the record store's database. Typed by port, so
    mypy checks every backend's store against the port it stands for."""

    entities: Callable[[], EntityStore]
    skills: Callable[[], SkillStore]
    learning: Callable[[], LearningStore]
    consolidation: Callable[[], ConsolidationStore]
    idempotency: Callable[[], IdempotencyStore]
    control: Callable[[], ControlStore]


def _side_stores(records: RecordStore) -> _SideStores:
    # Built on the store behind a circuit breaker's guard; each builder's caller puts the
    # side store behind the same guard (``alike``): one database, one circuit.
    records = unwrap(records)
    neo = _neo4j(records)
    if neo is not None:
        # Imported here so the embedded tier runs without the ``server`` extra installed.
        from ww.storage.neo4j.consolidation import Neo4jConsolidationStore
        from ww.storage.neo4j.control import Neo4jControlStore
        from ww.storage.neo4j.entities import Neo4jEntityStore
        from ww.storage.neo4j.idempotency import Neo4jIdempotencyStore
        from ww.storage.neo4j.learning import Neo4jLearningStore
        from ww.storage.neo4j.skills import Neo4jSkillStore

        return _SideStores(
            partial(Neo4jEntityStore, neo),
            partial(Neo4jSkillStore, neo),
            partial(Neo4jLearningStore, neo),
            partial(Neo4jConsolidationStore, neo),
            partial(Neo4jIdempotencyStore, neo),
            partial(Neo4jControlStore, neo),
        )
    db = _sqlite_db(records).db
    return _SideStores(
        partial(SQLiteEntityStore, db),
        partial(SQLiteSkillStore, db),
        partial(SQLiteLearningStore, db),
        partial(SQLiteConsolidationStore, db),
        partial(SQLiteIdempotencyStore, db),
        partial(SQLiteControlStore, db),
    )


def entity_store(records: RecordStore) -> EntityStore:
    """Entities in the record store's database (its connections; it owns open/close), behind
    the record store's circuit breaker when it has one."""
    return alike(records, _side_stores(records).entities())


def skill_store(records: RecordStore) -> SkillStore:
    """Skills in the record store's database."""
    return alike(records, _side_stores(records).skills())


def learning_store(records: RecordStore) -> LearningStore:
    """Learning state in the record store's database."""
    return alike(records, _side_stores(records).learning())


def build_consolidation_store(records: RecordStore) -> ConsolidationStore:
    """Consolidation's links and bookkeeping live in the record store's database."""
    return alike(records, _side_stores(records).consolidation())


def build_entity_stores(
    settings: Settings, records: RecordStore
) -> tuple[EntityStore, VectorIndex]:
    """Entities share the record store's database and have their own vector collection."""
    return entity_store(records), build_vector_index(settings, "entities")


def build_skill_stores(settings: Settings, records: RecordStore) -> tuple[SkillStore, VectorIndex]:
    """Skills share the record store's database and have their own vector collection."""
    return skill_store(records), build_vector_index(settings, "skills")


def idempotency_store(records: RecordStore) -> IdempotencyStore:
    """The answers of writes sent with an Idempotency-Key, in the record store's database
    (so every worker of a pool sees the same keys)."""
    return alike(records, _side_stores(records).idempotency())


def control_store(records: RecordStore) -> ControlStore:
    """The control plane's state (runtime flags, emergency level, audit) in the record
    store's database, so every worker and every restart sees the same. Not behind the
    database's circuit: its poll runs every half second whatever the traffic, and would
    open the circuit (and take its half-open trials) on its own; it keeps its last state
    while the database is down."""
    return _side_stores(records).control()
