"""Export and import of memories: ``jsonl`` owns the versioned JSON Lines format, validation
and batching; ``kinds`` has one exporter/importer per kind of record."""

from ww.engine.transfer import jsonl
from ww.engine.transfer.jsonl import *  # noqa: F403 (exactly jsonl.__all__)
from ww.engine.transfer.kinds import Memories

__all__: list[str] = ["Memories"]
__all__ += jsonl.__all__
