"""``ControlStore`` on the SQLite file the record store uses (migration 8).

Each change runs on the single writer connection in one immediate transaction: the counter
in ``control_state`` goes up by one, the change is applied, and the audit row takes the new
counter as its id, so two workers' changes cannot interleave.
"""

from __future__ import annotations

import sqlite3
from datetime import datetime

from ww.storage.payload import from_micros, to_micros
from ww.storage.ports.control import AuditKind, AuditRecord, ControlState, Emergency, Level
from ww.storage.sqlite.db import SQLiteDatabase

__all__ = ["SQLiteControlStore"]


def _bool(value: bool) -> str:
    return "true" if value else "false"


def _bump(c: sqlite3.Connection) -> int:
    row = c.execute(
        "UPDATE control_state SET version = version + 1 WHERE id = 1 RETURNING version"
    ).fetchone()
    return int(row[0])


def _emergency(row: tuple[str, str | None, int | None, str | None]) -> Emergency:
    level, reason, at, by = row
    return Emergency(Level(level), reason, from_micros(at) if at is not None else None, by)


class SQLiteControlStore:
    """Shares ``db`` with the record store, which owns open/close."""

    def __init__(self, db: SQLiteDatabase) -> None:
        self.db = db

    async def version(self) -> int:
        def read(c: sqlite3.Connection) -> int:
            return int(c.execute("SELECT version FROM control_state WHERE id = 1").fetchone()[0])

        return await self.db.read(read)

    async def state(self) -> ControlState:
        def read(c: sqlite3.Connection) -> ControlState:
            version, *emergency = c.execute(
                "SELECT version, level, reason, at, by FROM control_state WHERE id = 1"
            ).fetchone()
            flags = dict(c.execute("SELECT name, enabled FROM control_flags").fetchall())
            return ControlState(
                int(version),
                {name: bool(on) for name, on in flags.items()},
                _emergency(tuple(emergency)),
            )

        return await self.db.read(read)

    async def set_flag(
        self, name: str, enabled: bool, *, start: bool, who: str, at: datetime
    ) -> bool:
        def tx(c: sqlite3.Connection) -> bool:
            row = c.execute("SELECT enabled FROM control_flags WHERE name = ?", (name,)).fetchone()
            old = bool(row[0]) if row is not None else start
            c.execute(
                "INSERT INTO control_flags (name, enabled) VALUES (?, ?) "
                "ON CONFLICT (name) DO UPDATE SET enabled = excluded.enabled",
                (name, int(enabled)),
            )
            c.execute(
                "INSERT INTO control_audit (id, at, who, kind, name, old, new) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    _bump(c),
                    to_micros(at),
                    who,
                    AuditKind.FLAG.value,
                    name,
                    _bool(old),
                    _bool(enabled),
                ),
            )
            return old

        return await self.db.write(tx)

    async def set_emergency(
        self, level: Level, reason: str | None, *, who: str, at: datetime
    ) -> Emergency:
        def tx(c: sqlite3.Connection) -> Emergency:
            old = _emergency(
                c.execute("SELECT level, reason, at, by FROM control_state WHERE id = 1").fetchone()
            )
            micros = to_micros(at)
            c.execute(
                "UPDATE control_state SET level = ?, reason = ?, at = ?, by = ? WHERE id = 1",
                (level.value, reason, micros, who),
            )
            c.execute(
                "INSERT INTO control_audit (id, at, who, kind, name, old, new, reason) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    _bump(c),
                    micros,
                    who,
                    AuditKind.EMERGENCY.value,
                    "emergency",
                    old.level.value,
                    level.value,
                    reason,
                ),
            )
            return old

        return await self.db.write(tx)

    async def audit(self, limit: int, before: int | None = None) -> list[AuditRecord]:
        def read(c: sqlite3.Connection) -> list[AuditRecord]:
            rows = c.execute(
                "SELECT id, at, who, kind, name, old, new, reason FROM control_audit "
                "WHERE id < ? ORDER BY id DESC LIMIT ?",
                (before if before is not None else 2**62, limit),
            ).fetchall()
            return [
                AuditRecord(i, from_micros(at), who, AuditKind(kind), name, old, new, reason)
                for i, at, who, kind, name, old, new, reason in rows
            ]

        return await self.db.read(read)
