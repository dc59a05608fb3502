"""Domain types, one module per kind of memory: ``episodes`` (re-exported here, as the
types most callers need), ``semantic`` (entities and relations), ``procedural`` (skills),
``kinds`` (what entity and skill recall share), ``patch`` (the base of partial updates),
``unified`` (recall over every kind) and ``consolidation``."""

from ww.models import episodes
from ww.models.episodes import *  # noqa: F403 (exactly episodes.__all__)

__all__: list[str] = []
__all__ += episodes.__all__
