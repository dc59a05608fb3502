"""A mark in the record store saying whether the stores were last closed cleanly.

Start-up compares the record store's ids with the vector index's, one by one, because a
stop in the middle of a write (a crash, a kill, lost power) can leave one store written and
not the other, and a vector index can lose what it had not flushed. At a million memories
that comparison was about 4 of a start-up's 16 seconds. After a clean close (every write
finished, every vector index flushed) the stores can only be apart where a write failed
halfway while the process ran, and that changes a session's counts: an orphan vector adds
one, a lost vector takes one away. So the engine marks the stores open when it opens them
and closed once its vector index is flushed and closed; the next start skips the id
comparison of a session whose counts agree only when the mark says closed. A missing mark
(a data directory from before it) counts as open.

Only the embedded tier uses it (SQLite and Qdrant Edge under one data directory, which one
process owns): processes sharing server stores cannot tell one's clean close from
another's crash.
"""

from __future__ import annotations

from typing import Protocol

__all__ = ["CLOSE_MARK_KEY", "leave_closed", "take_open"]

CLOSE_MARK_KEY = "stores_closed_cleanly"


class _Meta(Protocol):
    async def get_meta(self, key: str) -> str | None: ...
    async def set_meta(self, key: str, value: str) -> None: ...


async def take_open(records: _Meta) -> bool:
    """Whether the stores were closed cleanly last time; from now on they are open."""
    clean = await records.get_meta(CLOSE_MARK_KEY) == "yes"
    await records.set_meta(CLOSE_MARK_KEY, "no")
    return clean


async def leave_closed(records: _Meta) -> None:
    """Every vector index is flushed and closed: the next start may trust the counts."""
    await records.set_meta(CLOSE_MARK_KEY, "yes")
