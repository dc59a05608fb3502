"""``ControlStore`` on the Neo4j record store's database.

One ``:WwControl {id: 'control'}`` node holds the change counter and the emergency level,
under a unique constraint (neo4j/schema.py) so concurrent ``MERGE``s make one node. Every
change first raises the counter on that node, which write-locks it: changes from any worker
run one after another, and the audit entry (``:WwControlAudit``) takes the new counter as
its id. Flags set at run time are ``:WwControlFlag {name}`` nodes.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from neo4j import AsyncManagedTransaction

from ww.storage.neo4j.driver import tx_all
from ww.storage.neo4j.records import Neo4jRecordStore
from ww.storage.payload import from_micros, to_micros
from ww.storage.ports.control import AuditKind, AuditRecord, ControlState, Emergency, Level

__all__ = ["Neo4jControlStore"]

# Raises the counter (creating the node on first use) and answers the node as it was.
_BUMP = (
    "MERGE (c:WwControl {id: 'control'}) ON CREATE SET c.version = 0, c.level = 'NONE' "
    "WITH c, c {.*} AS before SET c.version = c.version + 1 "
    "RETURN before, c.version AS version"
)
_AUDIT = (
    "CREATE (:WwControlAudit {id: $id, at: $at, who: $who, kind: $kind, name: $name, "
    "old: $old, new: $new, reason: $reason})"
)


def _emergency(node: dict[str, Any] | None) -> Emergency:
    if not node:
        return Emergency()
    at = node.get("at")
    return Emergency(
        Level(node.get("level", "NONE")),
        node.get("reason"),
        from_micros(at) if at is not None else None,
        node.get("by"),
    )


async def _bump(t: AsyncManagedTransaction) -> tuple[dict[str, Any], int]:
    row = await (await t.run(_BUMP)).single(strict=True)
    return dict(row["before"]), int(row["version"])


class Neo4jControlStore:
    """Shares ``db`` (its driver) with the record store, which owns open/close."""

    def __init__(self, db: Neo4jRecordStore) -> None:
        self.db = db

    async def version(self) -> int:
        rows = await self.db.read(
            tx_all("MATCH (c:WwControl {id: 'control'}) RETURN c.version AS v", {})
        )
        return int(rows[0]["v"]) if rows else 0

    async def state(self) -> ControlState:
        async def tx(t: AsyncManagedTransaction) -> ControlState:
            result = await t.run("OPTIONAL MATCH (c:WwControl {id: 'control'}) RETURN c {.*} AS c")
            node = (await result.single(strict=True))["c"]
            result = await t.run("MATCH (f:WwControlFlag) RETURN f.name AS name, f.enabled AS on")
            flags = {r["name"]: bool(r["on"]) async for r in result}
            return ControlState(int(node["version"]) if node else 0, flags, _emergency(node))

        return await self.db.read(tx)

    async def set_flag(
        self, name: str, enabled: bool, *, start: bool, who: str, at: datetime
    ) -> bool:
        async def tx(t: AsyncManagedTransaction) -> bool:
            _, version = await _bump(t)
            result = await t.run(
                "MERGE (f:WwControlFlag {name: $name}) "
                "WITH f, f.enabled AS old SET f.enabled = $on RETURN old",
                {"name": name, "on": enabled},
            )
            stored = (await result.single(strict=True))["old"]
            old = bool(stored) if stored is not None else start
            await (
                await t.run(
                    _AUDIT,
                    {
                        "id": version,
                        "at": to_micros(at),
                        "who": who,
                        "kind": AuditKind.FLAG.value,
                        "name": name,
                        "old": "true" if old else "false",
                        "new": "true" if enabled else "false",
                        "reason": None,
                    },
                )
            ).consume()
            return old

        return await self.db.write(tx)

    async def set_emergency(
        self, level: Level, reason: str | None, *, who: str, at: datetime
    ) -> Emergency:
        async def tx(t: AsyncManagedTransaction) -> Emergency:
            before, version = await _bump(t)
            old = _emergency(before)
            params = {"level": level.value, "reason": reason, "at": to_micros(at), "who": who}
            await (
                await t.run(
                    "MATCH (c:WwControl {id: 'control'}) "
                    "SET c.level = $level, c.reason = $reason, c.at = $at, c.by = $who",
                    params,
                )
            ).consume()
            await (
                await t.run(
                    _AUDIT,
                    {
                        **params,
                        "id": version,
                        "kind": AuditKind.EMERGENCY.value,
                        "name": "emergency",
                        "old": old.level.value,
                        "new": level.value,
                    },
                )
            ).consume()
            return old

        return await self.db.write(tx)

    async def audit(self, limit: int, before: int | None = None) -> list[AuditRecord]:
        rows = await self.db.read(
            tx_all(
                "MATCH (a:WwControlAudit) WHERE $before IS NULL OR a.id < $before "
                "RETURN a {.*} AS a ORDER BY a.id DESC LIMIT $limit",
                {"before": before, "limit": limit},
            )
        )
        return [
            AuditRecord(
                int(a["id"]),
                from_micros(a["at"]),
                a["who"],
                AuditKind(a["kind"]),
                a["name"],
                a["old"],
                a["new"],
                a.get("reason"),
            )
            for a in (r["a"] for r in rows)
        ]
