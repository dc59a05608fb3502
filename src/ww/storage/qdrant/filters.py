"""The Qdrant filters both Qdrant backends send, written once.

Qdrant Edge and qdrant-client spell the same conditions with classes of their own (``qe.*``
and ``models.*``, mostly of the same names and fields); the filters built from them (a
session, a search, a memory with its parts, the stale parts) are composed here.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from typing import Any
from uuid import UUID

from ww.storage.payload import MatchTerm, filter_terms
from ww.storage.vector_base import PART, PART_OF, Search

__all__ = ["QdrantFilters"]


class QdrantFilters:
    """The filters of one client. ``ns`` is ``qdrant_edge`` or ``qdrant_client.models``,
    which name the common classes alike; the three that differ are given."""

    def __init__(
        self,
        ns: Any,
        *,
        range_type: Callable[..., Any],
        has_ids: Callable[[Collection[UUID]], Any],
        is_empty: Callable[[str], Any],
    ) -> None:
        self._ns = ns
        self._range_type = range_type
        self.has_ids = has_ids
        self.is_empty = is_empty

    def match(self, key: str, value: Any) -> Any:
        return self._ns.FieldCondition(key=key, match=self._ns.MatchValue(value=value))

    def match_any(self, key: str, values: list[str]) -> Any:
        return self._ns.FieldCondition(key=key, match=self._ns.MatchAny(any=values))

    def range(self, key: str, **bounds: float | None) -> Any:
        return self._ns.FieldCondition(key=key, range=self._range_type(**bounds))

    def all_of(self, conds: list[Any]) -> Any:
        return self._ns.Filter(must=conds)

    def any_of(self, conds: list[Any]) -> Any:
        return self._ns.Filter(should=conds)

    # -- composed -------------------------------------------------------------------------------
    def session(self, session_id: str, *extra: Any) -> Any:
        return self.all_of([self.match("session_id", session_id), *extra])

    def search(self, q: Search) -> Any:
        """The session, ``q.flt``'s terms (``filter_terms``) and ``q.within``'s memories."""
        conds = [
            self.match(t.key, t.value)
            if isinstance(t, MatchTerm)
            else self.range(t.key, gte=t.gte, lt=t.lt)
            for t in filter_terms(q.flt)
        ]
        if q.within is not None:
            conds.append(self.memories(q.within))
        return self.session(q.session_id, *conds)

    def memories(self, ids: Collection[UUID]) -> Any:
        """The points of these memories: their own and their parts'."""
        owners = sorted({str(i) for i in ids})
        return self.any_of([self.has_ids(ids), self.match_any(PART_OF, owners)])

    def of_memories(self, session_id: str, ids: Collection[UUID]) -> Any:
        return self.session(session_id, self.memories(ids))

    def mains(self, session_id: str) -> Any:
        """The session's memories, without their parts."""
        return self.session(session_id, self.is_empty(PART_OF))

    def parts_beyond(self, session_id: str, keep: Mapping[UUID, int]) -> Any:
        """Each memory's parts numbered above ``keep[memory]``."""
        stale = [
            self.all_of([self.match(PART_OF, str(m)), self.range(PART, gt=k)])
            for m, k in keep.items()
        ]
        return self.session(session_id, self.any_of(stale))
