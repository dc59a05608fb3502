"""The idempotency port: what a write with an ``Idempotency-Key`` answered, per session.

A key goes through two states. ``claim`` reserves it (in progress) for one request, named by
a token; ``complete`` stores that request's answer on the reservation, ``release`` gives the
key back when the request failed. A stored answer lives until it expires; a reservation
whose request never finished (the process died) goes stale and may be claimed again.
Claiming is one atomic step in the store, so of concurrent requests with one key exactly one
gets the reservation, whichever process or worker they run in.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Protocol

__all__ = ["Claim", "ClaimState", "Horizon", "IdempotencyStore", "Reservation", "StoredAnswer"]


class ClaimState(StrEnum):
    NEW = "new"  # the caller holds the reservation now
    IN_PROGRESS = "in_progress"  # another request holds it
    DONE = "done"  # an answer is stored


@dataclass(frozen=True, slots=True)
class StoredAnswer:
    status: int
    body: str  # the JSON text of the answer, as first sent


@dataclass(frozen=True, slots=True)
class Reservation:
    """A request's hold on a key: its fingerprint, the token naming it, and when it began."""

    fingerprint: str
    token: str
    at: datetime


@dataclass(frozen=True, slots=True)
class Horizon:
    """How far back keys still count: answers stored at or after ``expired_before`` and
    reservations made at or after ``stale_before``. Older ones are as if absent."""

    expired_before: datetime
    stale_before: datetime


@dataclass(frozen=True, slots=True)
class Claim:
    """What ``claim`` found. ``fingerprint`` is the key's (the caller's when NEW), so a
    caller can tell a retry from the reuse of a key for another request; ``answer`` is set
    when DONE."""

    state: ClaimState
    fingerprint: str
    answer: StoredAnswer | None = None


class IdempotencyStore(Protocol):
    """Keys are scoped by session: one session's key never meets another's."""

    async def claim(self, session_id: str, key: str, mine: Reservation, horizon: Horizon) -> Claim:
        """Reserve ``key`` for ``mine`` unless an answer or a reservation within ``horizon``
        holds it; one beyond the horizon counts as absent and is replaced."""

    async def complete(
        self, session_id: str, key: str, token: str, answer: StoredAnswer, now: datetime
    ) -> bool:
        """Store ``answer`` on the reservation ``token`` holds, dated ``now``; False when the
        reservation is no longer that token's (it went stale and was claimed again)."""

    async def release(self, session_id: str, key: str, token: str) -> None:
        """Drop the reservation ``token`` holds, if it still does."""

    async def purge(self, horizon: Horizon) -> int:
        """Delete the answers and reservations beyond ``horizon``, in every session; how
        many went."""

    async def delete_session(self, session_id: str) -> None: ...
