"""Write callbacks that return their sqlite3 cursor must not break later writes.

A cursor returned from the writer thread used to be freed wherever its last reference died,
on the event loop's thread; freeing it resets the statement it ran, which the writer
connection's statement cache may be running again for the next write at that moment.
sqlite3 then fails that write with ``InterfaceError: bad parameter or other API misuse``
(about one write in a thousand under 32 concurrent writers). The database helper closes
a returned cursor on the thread that ran it.
"""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

from ww.storage.sqlite.db import SQLiteDatabase

WRITERS = 32
WRITES_EACH = 800  # 25,600 writes: without the fix, 3 to 15 of them failed here
ROWS = [(i, "x") for i in range(4)]


async def test_returned_cursors_never_break_concurrent_writes(tmp_path: Path) -> None:
    db = SQLiteDatabase(tmp_path / "ww.sqlite3")
    await db.open()
    try:
        await db.write(lambda c: c.execute("CREATE TABLE t (n INTEGER, s TEXT)"))
        sql = "INSERT INTO t (n, s) VALUES (?, ?)"

        async def writer() -> list[BaseException]:
            errors: list[BaseException] = []
            for _ in range(WRITES_EACH):
                try:
                    # The shape of the store's callbacks: the lambda hands back the cursor
                    # that executemany returns, and the caller drops it.
                    await db.write(lambda c: c.executemany(sql, ROWS))
                except sqlite3.Error as exc:
                    errors.append(exc)
            return errors

        results = await asyncio.gather(*(writer() for _ in range(WRITERS)))
        errors = [e for r in results for e in r]
        assert errors == []
        count = await db.read(lambda c: c.execute("SELECT count(*) FROM t").fetchone()[0])
        assert count == WRITERS * WRITES_EACH * len(ROWS)
    finally:
        await db.close()


async def test_a_returned_cursor_is_closed_before_it_leaves_the_thread(tmp_path: Path) -> None:
    db = SQLiteDatabase(tmp_path / "ww.sqlite3")
    await db.open()
    try:
        out = await db.write(lambda c: c.execute("CREATE TABLE t (n INTEGER)"))
        assert out is None
        out = await db.read(lambda c: c.execute("SELECT 1"))
        assert out is None
        # Anything else comes back as the callback made it.
        rows = await db.read(lambda c: c.execute("SELECT 1 AS one").fetchall())
        assert [tuple(r) for r in rows] == [(1,)]
    finally:
        await db.close()
