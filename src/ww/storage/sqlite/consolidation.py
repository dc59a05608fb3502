"""ConsolidationStore on the record store's SQLite database (migration 3)."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

from ww.storage.payload import from_micros, to_micros
from ww.storage.ports.consolidation import (
    ConsolidatedEntity,
    EdgeDecay,
    LinkType,
    MemoryLink,
    WeightedEdge,
)
from ww.storage.sqlite.db import SQLiteDatabase

__all__ = ["SQLiteConsolidationStore", "link_values"]


def link_values(session_id: str, link: MemoryLink) -> tuple[str, str, str, str, int]:
    """``link`` as a ``memory_links`` row; the Neo4j store keeps the same values on its
    link nodes."""
    return (
        session_id,
        str(link.source_id),
        str(link.target_id),
        link.link_type.value,
        to_micros(link.created_at),
    )


def _links(rows: Sequence[Sequence[Any]]) -> list[MemoryLink]:
    return [MemoryLink(UUID(r[0]), UUID(r[1]), LinkType(r[2]), from_micros(r[3])) for r in rows]


class SQLiteConsolidationStore:
    """Shares ``db`` with the record store, which owns its lifecycle (open/close)."""

    def __init__(self, db: SQLiteDatabase) -> None:
        self._read = db.read
        self._write = db.write

    async def links(self, session_id: str, memory_id: UUID) -> list[MemoryLink]:
        key = str(memory_id)
        rows = await self._read(
            lambda c: c.execute(
                "SELECT source_id, target_id, link_type, created_at FROM memory_links "
                "WHERE session_id = ? AND (source_id = ? OR target_id = ?) "
                "ORDER BY created_at, source_id, target_id",
                (session_id, key, key),
            ).fetchall()
        )
        return _links(rows)

    async def add_links(self, session_id: str, links: Sequence[MemoryLink]) -> int:
        rows = [link_values(session_id, k) for k in links]

        def tx(c: sqlite3.Connection) -> int:
            before = c.total_changes
            c.executemany("INSERT OR IGNORE INTO memory_links VALUES (?, ?, ?, ?, ?)", rows)
            return c.total_changes - before

        return await self._write(tx)

    async def latest_links(self, session_id: str) -> list[MemoryLink]:
        rows = await self._read(
            lambda c: c.execute(
                "SELECT source_id, target_id, link_type, created_at FROM memory_links "
                "WHERE session_id = ? AND created_at = "
                "(SELECT max(created_at) FROM memory_links WHERE session_id = ?) "
                "ORDER BY link_type, target_id, source_id",
                (session_id, session_id),
            ).fetchall()
        )
        return _links(rows)

    async def consolidated(self, session_id: str) -> list[ConsolidatedEntity]:
        def q(c: sqlite3.Connection) -> list[ConsolidatedEntity]:
            heads = c.execute(
                "SELECT ce.entity_id, ce.members_hash, ce.confidence FROM consolidated_entities ce "
                "JOIN entities e ON e.id = ce.entity_id "
                "WHERE ce.session_id = ? AND e.valid_to IS NULL ORDER BY ce.entity_id",
                (session_id,),
            ).fetchall()
            out = []
            for entity_id, members_hash, confidence in heads:
                members = c.execute(
                    "SELECT source_id FROM memory_links WHERE session_id = ? AND target_id = ? "
                    "AND link_type = ?",
                    (session_id, entity_id, LinkType.CONSOLIDATED_INTO.value),
                ).fetchall()
                out.append(
                    ConsolidatedEntity(
                        UUID(entity_id),
                        members_hash,
                        frozenset(UUID(m[0]) for m in members),
                        float(confidence),
                    )
                )
            return out

        return await self._read(q)

    async def save_consolidated(
        self, session_id: str, entity: ConsolidatedEntity, at: datetime
    ) -> None:
        key, ts, members = str(entity.entity_id), to_micros(at), entity.members

        def tx(c: sqlite3.Connection) -> None:
            c.execute(
                "INSERT INTO consolidated_entities VALUES (?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (entity_id) DO UPDATE SET members_hash = excluded.members_hash, "
                "members = excluded.members, confidence = excluded.confidence, "
                "updated_at = excluded.updated_at",
                (key, session_id, entity.members_hash, len(members), entity.confidence, ts),
            )
            c.execute(
                "DELETE FROM memory_links WHERE session_id = ? AND target_id = ? AND link_type = ?",
                (session_id, key, LinkType.CONSOLIDATED_INTO.value),
            )
            c.executemany(
                "INSERT OR IGNORE INTO memory_links VALUES (?, ?, ?, ?, ?)",
                [
                    (session_id, str(m), key, LinkType.CONSOLIDATED_INTO.value, ts)
                    for m in sorted(members, key=str)
                ],
            )

        await self._write(tx)

    async def edges(self, session_id: str, after: UUID | None, limit: int) -> list[WeightedEdge]:
        rows = await self._read(
            lambda c: c.execute(
                "SELECT id, weight, max(last_strengthened, coalesce(last_decayed, 0)) "
                "FROM relations WHERE session_id = ? AND valid_to IS NULL AND id > ? "
                "ORDER BY id LIMIT ?",
                (session_id, str(after) if after else "", limit),
            ).fetchall()
        )
        return [WeightedEdge(UUID(r[0]), float(r[1]), from_micros(r[2])) for r in rows]

    async def decay_edges(
        self, session_id: str, changes: Sequence[EdgeDecay], at: datetime
    ) -> None:
        ts = to_micros(at)

        def tx(c: sqlite3.Connection) -> None:
            c.executemany(
                "UPDATE relations SET weight = ?, last_decayed = ?, "
                "valid_to = CASE WHEN ? THEN ? ELSE valid_to END "
                "WHERE id = ? AND session_id = ? AND valid_to IS NULL",
                [(d.weight, ts, d.pruned, ts, str(d.id), session_id) for d in changes],
            )

        await self._write(tx)

    async def delete_session(self, session_id: str) -> None:
        def tx(c: sqlite3.Connection) -> None:
            c.execute("DELETE FROM memory_links WHERE session_id = ?", (session_id,))
            c.execute("DELETE FROM consolidated_entities WHERE session_id = ?", (session_id,))

        await self._write(tx)
