"""Export and import of memories: ``jsonl`` owns the versioned JSON Lines format, validation
and batching; ``kinds`` has one exporter/importer per kind of record."""

from ww.engine.transfer.jsonl import (
    FORMAT,
    FORMAT_VERSION,
    MEDIA_TYPE,
    ExportHeader,
    ExportTrailer,
    ImportConflictError,
    ImportReport,
    InvalidImportError,
    ReembedMode,
    Transfer,
)
from ww.engine.transfer.kinds import Memories

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "MEDIA_TYPE",
    "ExportHeader",
    "ExportTrailer",
    "ImportConflictError",
    "ImportReport",
    "InvalidImportError",
    "Memories",
    "ReembedMode",
    "Transfer",
]
