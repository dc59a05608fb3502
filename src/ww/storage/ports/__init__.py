"""The ports the engine talks to, one module each: ``records`` (the source of truth and the
errors every store raises), ``vectors``, ``entities``, ``skills``, ``learning`` and
``consolidation``.

Every method takes the session it acts in; nothing reads across sessions. A memory of
another session is simply not found. Each backend implements a port completely, and the
contract suite in ``tests/contract`` runs against every backend.
"""

from ww.storage.ports.records import (
    AccessUpdate,
    CandidateRow,
    EpisodePage,
    IdConflictError,
    InvalidCursorError,
    RecordStore,
    StoreUnavailableError,
)
from ww.storage.ports.vectors import (
    ScoredId,
    Vector,
    VectorIndex,
    VectorItem,
    check_vector_items,
)

__all__ = [
    "AccessUpdate",
    "CandidateRow",
    "EpisodePage",
    "IdConflictError",
    "InvalidCursorError",
    "RecordStore",
    "ScoredId",
    "StoreUnavailableError",
    "Vector",
    "VectorIndex",
    "VectorItem",
    "check_vector_items",
]
