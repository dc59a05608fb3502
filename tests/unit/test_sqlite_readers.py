"""The SQLite reader pool: its size, and that one slow read does not hold up the rest."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

from ww.storage.sqlite.db import SQLiteDatabase, default_readers


def test_default_readers_are_half_the_cores_between_two_and_four() -> None:
    assert [default_readers(n) for n in (1, 2, 4, 6, 8, 64)] == [2, 2, 2, 3, 4, 4]


async def test_a_blocked_read_leaves_another_reader_free(tmp_path: Path) -> None:
    db = SQLiteDatabase(tmp_path / "ww.sqlite3")
    await db.open()
    try:
        release = threading.Event()
        # The first read holds its reader thread until released, as building a large
        # session's keyword index does for seconds.
        slow = asyncio.ensure_future(db.read(lambda c: release.wait(10)))
        await asyncio.sleep(0.05)
        one = await asyncio.wait_for(db.read(lambda c: c.execute("SELECT 1").fetchone()[0]), 5)
        assert one == 1 and not slow.done()
        release.set()
        assert await slow is True
    finally:
        await db.close()
