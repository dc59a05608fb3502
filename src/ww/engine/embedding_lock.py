"""The embedding model a data directory was written with, kept in the record store's meta:
vectors of another model (or size) cannot be compared with the stored ones, so such a
directory is refused with one line that names both models."""

from __future__ import annotations

from ww.config import ConfigError
from ww.storage.ports import RecordStore

__all__ = ["EmbeddingMismatchError", "check_embedding_lock"]


class EmbeddingMismatchError(ConfigError):
    """The data directory was written with another embedding model or dimension."""


async def check_embedding_lock(records: RecordStore, model: str, dim: int) -> None:
    """Record the model on first use; refuse a store written with another model or size."""
    stored_model = await records.get_meta("embedding_model")
    stored_dim = await records.get_meta("embedding_dimension")
    if stored_model is None:
        await records.set_meta("embedding_model", model)
        await records.set_meta("embedding_dimension", str(dim))
        return
    if stored_model != model or stored_dim != str(dim):
        raise EmbeddingMismatchError(
            f"this data directory was created with embedding model {stored_model!r} "
            f"({stored_dim} dimensions) and cannot be opened with {model!r} ({dim}); "
            f"set WW_EMBEDDING_MODEL={stored_model} and WW_EMBEDDING_DIMENSION={stored_dim},"
            " or point WW_DATA_DIR at another directory"
        )
