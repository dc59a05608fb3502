"""The embedded tier's record-side backend: every port but the vector index on one SQLite
file (WAL, one writer thread, a reader pool; ``db``), with the episode keyword index in
memory (``keyword_index``)."""

from ww.storage.sqlite.consolidation import SQLiteConsolidationStore
from ww.storage.sqlite.db import SQLiteDatabase
from ww.storage.sqlite.entities import SQLiteEntityStore
from ww.storage.sqlite.learning import SQLiteLearningStore
from ww.storage.sqlite.records import SQLiteRecordStore
from ww.storage.sqlite.skills import SQLiteSkillStore

__all__ = [
    "SQLiteConsolidationStore",
    "SQLiteDatabase",
    "SQLiteEntityStore",
    "SQLiteLearningStore",
    "SQLiteRecordStore",
    "SQLiteSkillStore",
]
