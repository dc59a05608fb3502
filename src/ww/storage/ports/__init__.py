"""The ports the engine talks to, one module each: ``records`` (the source of truth and the
errors every store raises), ``vectors``, ``entities``, ``skills``, ``learning`` and
``consolidation``.

Every method takes the session it acts in; nothing reads across sessions (but the
operator's views: the session listings and the metrics' ``memory_counts``). A memory of
another session is simply not found. Each backend implements a port completely, and the
contract suite in ``tests/contract`` runs against every backend.
"""

from ww.storage.ports import records, vectors
from ww.storage.ports.records import *  # noqa: F403 (exactly records.__all__)
from ww.storage.ports.vectors import *  # noqa: F403 (exactly vectors.__all__)

__all__: list[str] = []
__all__ += records.__all__
__all__ += vectors.__all__
