"""Pick the backends named by the configuration."""

from __future__ import annotations

from ww.config import ConfigError, Settings
from ww.storage.ports import RecordStore, VectorIndex
from ww.storage.qdrant_edge import QdrantEdgeIndex
from ww.storage.sqlite import SQLiteRecordStore

__all__ = ["build_stores", "build_vector_index"]


def build_vector_index(settings: Settings) -> VectorIndex:
    """A Qdrant server when ``WW_QDRANT_URL`` is set, else Qdrant Edge in the data dir."""
    if settings.qdrant_url is None:
        return QdrantEdgeIndex(settings.data_dir / "vectors", settings.embedding_dimension)
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
        hnsw_m=settings.qdrant_hnsw_m,
        hnsw_ef_construct=settings.qdrant_hnsw_ef_construct,
        on_disk=settings.qdrant_on_disk,
        timeout_s=settings.qdrant_timeout_s,
    )


def build_stores(settings: Settings) -> tuple[RecordStore, VectorIndex]:
    """Records in ``$WW_DATA_DIR/ww.sqlite3``; vectors as ``build_vector_index`` decides."""
    return SQLiteRecordStore(settings.data_dir / "ww.sqlite3"), build_vector_index(settings)
