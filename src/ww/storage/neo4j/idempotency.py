"""``IdempotencyStore`` on the Neo4j record store's database.

One ``:WwIdempotency`` node per session and key, keyed ``session/key`` under a unique
constraint (neo4j/schema.py), so concurrent ``MERGE``s of one key make one node. A claim
write-locks that node before reading it: two claims of one stale or expired key, in any
workers, then see each other's outcome instead of both replacing it. ``status`` is absent
while the key is reserved.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from neo4j import AsyncManagedTransaction

from ww.storage.neo4j.driver import tx_all, tx_consume
from ww.storage.neo4j.records import Neo4jRecordStore
from ww.storage.payload import to_micros
from ww.storage.ports.idempotency import Claim, ClaimState, Horizon, Reservation, StoredAnswer

__all__ = ["Neo4jIdempotencyStore"]


def _key(session_id: str, key: str) -> str:
    # Session ids never contain '/', so the pair cannot be forged from another session's.
    return f"{session_id}/{key}"


class Neo4jIdempotencyStore:
    """Shares ``db`` (its driver) with the record store, which owns open/close."""

    def __init__(self, db: Neo4jRecordStore) -> None:
        self.db = db

    async def claim(self, session_id: str, key: str, mine: Reservation, horizon: Horizon) -> Claim:
        params: dict[str, Any] = {
            "key": _key(session_id, key),
            "sid": session_id,
            "fp": mine.fingerprint,
            "token": mine.token,
            "now": to_micros(mine.at),
        }
        expired, stale = to_micros(horizon.expired_before), to_micros(horizon.stale_before)

        async def tx(t: AsyncManagedTransaction) -> Claim:
            # MERGE creates the reservation, or write-locks the node that holds the key.
            result = await t.run(
                "MERGE (k:WwIdempotency {key: $key}) "
                "ON CREATE SET k.session_id = $sid, k.fingerprint = $fp, k.token = $token, "
                "k.at = $now "
                "ON MATCH SET k.ww_lock = true REMOVE k.ww_lock "
                "RETURN k {.*} AS k",
                params,
            )
            node = (await result.single(strict=True))["k"]
            if node["token"] == mine.token:
                return Claim(ClaimState.NEW, mine.fingerprint)
            if node.get("status") is not None and node["at"] >= expired:
                answer = StoredAnswer(node["status"], node["body"])
                return Claim(ClaimState.DONE, node["fingerprint"], answer)
            if node.get("status") is None and node["at"] >= stale:
                return Claim(ClaimState.IN_PROGRESS, node["fingerprint"])
            result = await t.run(
                "MATCH (k:WwIdempotency {key: $key}) "
                "SET k.fingerprint = $fp, k.token = $token, k.at = $now "
                "REMOVE k.status, k.body",
                params,
            )
            await result.consume()
            return Claim(ClaimState.NEW, mine.fingerprint)

        return await self.db.write(tx)

    async def complete(
        self, session_id: str, key: str, token: str, answer: StoredAnswer, now: datetime
    ) -> bool:
        rows = await self.db.write(
            tx_all(
                "MATCH (k:WwIdempotency {key: $key}) "
                "WHERE k.token = $token AND k.status IS NULL "
                "SET k.status = $status, k.body = $body, k.at = $now RETURN 1 AS done",
                {
                    "key": _key(session_id, key),
                    "token": token,
                    "status": answer.status,
                    "body": answer.body,
                    "now": to_micros(now),
                },
            )
        )
        return bool(rows)

    async def release(self, session_id: str, key: str, token: str) -> None:
        await self.db.write(
            tx_consume(
                "MATCH (k:WwIdempotency {key: $key}) "
                "WHERE k.token = $token AND k.status IS NULL DELETE k",
                {"key": _key(session_id, key), "token": token},
            )
        )

    async def purge(self, horizon: Horizon) -> int:
        rows = await self.db.write(
            tx_all(
                "MATCH (k:WwIdempotency) WHERE (k.status IS NOT NULL AND k.at < $expired) "
                "OR (k.status IS NULL AND k.at < $stale) DELETE k RETURN count(*) AS n",
                {
                    "expired": to_micros(horizon.expired_before),
                    "stale": to_micros(horizon.stale_before),
                },
            )
        )
        return int(rows[0]["n"])

    async def delete_session(self, session_id: str) -> None:
        await self.db.write(
            tx_consume(
                "MATCH (k:WwIdempotency) WHERE k.session_id = $sid DELETE k", {"sid": session_id}
            )
        )
