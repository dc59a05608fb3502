"""``IdempotencyStore`` on the SQLite file the record store uses (migration 7).

One row per session and key. The answer's ``status`` is NULL while the key is reserved;
``at`` is when it was reserved, then when the answer was stored. Every change runs on the
single writer connection inside one immediate transaction, so a claim's read and its insert
cannot interleave with another claim's.
"""

from __future__ import annotations

import sqlite3
from datetime import datetime

from ww.storage.payload import to_micros
from ww.storage.ports.idempotency import Claim, ClaimState, Horizon, Reservation, StoredAnswer
from ww.storage.sqlite.db import SQLiteDatabase

__all__ = ["SQLiteIdempotencyStore"]


def _micros(horizon: Horizon) -> tuple[int, int]:
    return to_micros(horizon.expired_before), to_micros(horizon.stale_before)


class SQLiteIdempotencyStore:
    """Shares ``db`` with the record store, which owns open/close."""

    def __init__(self, db: SQLiteDatabase) -> None:
        self.db = db

    async def claim(self, session_id: str, key: str, mine: Reservation, horizon: Horizon) -> Claim:
        expired, stale = _micros(horizon)

        def tx(c: sqlite3.Connection) -> Claim:
            row = c.execute(
                "SELECT fingerprint, at, status, body FROM idempotency_keys "
                "WHERE session_id = ? AND key = ?",
                (session_id, key),
            ).fetchone()
            if row is not None:
                fp, at, status, body = row
                if status is not None and at >= expired:
                    return Claim(ClaimState.DONE, fp, StoredAnswer(status, body))
                if status is None and at >= stale:
                    return Claim(ClaimState.IN_PROGRESS, fp)
            c.execute(
                "INSERT OR REPLACE INTO idempotency_keys"
                "(session_id, key, fingerprint, token, at, status, body) "
                "VALUES (?, ?, ?, ?, ?, NULL, NULL)",
                (session_id, key, mine.fingerprint, mine.token, to_micros(mine.at)),
            )
            return Claim(ClaimState.NEW, mine.fingerprint)

        return await self.db.write(tx)

    async def complete(
        self, session_id: str, key: str, token: str, answer: StoredAnswer, now: datetime
    ) -> bool:
        def tx(c: sqlite3.Connection) -> bool:
            cur = c.execute(
                "UPDATE idempotency_keys SET status = ?, body = ?, at = ? "
                "WHERE session_id = ? AND key = ? AND token = ? AND status IS NULL",
                (answer.status, answer.body, to_micros(now), session_id, key, token),
            )
            return cur.rowcount == 1

        return await self.db.write(tx)

    async def release(self, session_id: str, key: str, token: str) -> None:
        def tx(c: sqlite3.Connection) -> None:
            c.execute(
                "DELETE FROM idempotency_keys "
                "WHERE session_id = ? AND key = ? AND token = ? AND status IS NULL",
                (session_id, key, token),
            )

        await self.db.write(tx)

    async def purge(self, horizon: Horizon) -> int:
        def tx(c: sqlite3.Connection) -> int:
            sql = (
                "DELETE FROM idempotency_keys "
                "WHERE (status IS NOT NULL AND at < ?) OR (status IS NULL AND at < ?)"
            )
            return c.execute(sql, _micros(horizon)).rowcount

        return await self.db.write(tx)

    async def delete_session(self, session_id: str) -> None:
        def tx(c: sqlite3.Connection) -> None:
            c.execute("DELETE FROM idempotency_keys WHERE session_id = ?", (session_id,))

        await self.db.write(tx)
