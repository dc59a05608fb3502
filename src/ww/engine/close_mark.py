"""A mark in the record store saying whether the episode stores were last closed cleanly.

Start-up compares the record store's episode ids with the vector index's, one by one,
because a stop in the middle of a write (a crash, a kill, lost power) can leave one store
written and not the other, and a vector index can lose what it had not flushed. At a
million memories that comparison was about 4 of a start-up's 16 seconds. After a clean
close (every write finished, the vector index flushed and closed) the stores can only be
apart where a write failed halfway, or raced a delete, while the process ran; most such
leftovers change a session's counts (a vector whose record is still pending or gone adds
one, a record whose vector was deleted takes one away). So a start after a clean close
compares ids only in sessions whose counts differ, and the first maintenance pass compares
every session in the background (``MemoryEngine.ids_unverified``), for the rare session
where two leftovers cancel out.

Every open writes ``open:<token>``, whatever the tier, so a run that cannot vouch for the
stores (the server tier, SQLite with a Qdrant server) never leaves an older ``yes``
behind; only the process that wrote the token may turn it into ``yes``, so a close that
overlaps another process's start cannot vouch for that process. A missing mark (a data
directory from before it) counts as open.
"""

from __future__ import annotations

import logging
from typing import Protocol
from uuid import uuid4

__all__ = ["CLOSED", "CLOSE_MARK_KEY", "CloseMark", "leave_closed", "take_open"]

log = logging.getLogger(__name__)

CLOSE_MARK_KEY = "stores_closed_cleanly"
CLOSED = "yes"


class _Meta(Protocol):
    async def get_meta(self, key: str) -> str | None: ...
    async def set_meta(self, key: str, value: str) -> None: ...


async def take_open(records: _Meta) -> tuple[bool, str]:
    """Whether the stores were closed cleanly last time, and this open's token (the mark
    now says open)."""
    clean = await records.get_meta(CLOSE_MARK_KEY) == CLOSED
    token = f"open:{uuid4()}"
    await records.set_meta(CLOSE_MARK_KEY, token)
    return clean, token


async def leave_closed(records: _Meta, token: str) -> bool:
    """Mark the stores closed if the mark is still this open's ``token``; whether it did."""
    if await records.get_meta(CLOSE_MARK_KEY) != token:
        return False
    await records.set_meta(CLOSE_MARK_KEY, CLOSED)
    return True


class CloseMark:
    """The mark of one engine's record store. ``vouch``: the stores are this process's
    alone (the embedded tier), so its clean close may be trusted."""

    def __init__(self, records: _Meta, *, vouch: bool) -> None:
        self._records = records
        self.vouch = vouch
        self._taken: str | None = None  # this open's token
        self._armed: str | None = None  # the token, once the open completed

    async def take(self) -> bool:
        """At open: whether start-up may trust counts (the mark now says open)."""
        clean, self._taken = await take_open(self._records)
        return clean and self.vouch

    def arm(self) -> None:
        """The open completed: its close may mark the stores closed."""
        self._armed = self._taken

    def disarm(self) -> str | None:
        """A close begins: the token to leave with, if the open completed, and only once."""
        token, self._armed = self._armed, None
        return token

    async def leave(self, token: str | None, *, verified: bool) -> None:
        """At close, once the vector index is flushed and closed. ``verified``: no id left
        uncompared since a trusting start (a process that stops before its first maintenance
        pass passes the comparison on to the next start). A failure to write (a full disk, a
        store gone) only costs the next start its shortcut, so it never fails the close."""
        if token is None or not self.vouch:
            return
        if not verified:
            log.info("ids not compared since start-up: not marked closed cleanly")
            return
        try:
            left = await leave_closed(self._records, token)
        except Exception as exc:
            log.warning(
                "stores not marked closed cleanly (%s): the next start compares them id by id",
                type(exc).__name__,
            )
            return
        if not left:
            log.info("another process opened the stores meanwhile: not marked closed cleanly")
