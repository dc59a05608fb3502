"""The free-space watermark on a real, small tmpfs: writes refused below it, deletes down
to the reserve, a store's own "disk full" answered as insufficient storage."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from uuid import uuid4

import numpy as np
import pytest

from tests.tmpfs import fill_to, free_mb, tmpfs
from ww.storage.diskspace import DiskGuard, InsufficientStorageError, freeing
from ww.storage.ports import VectorItem
from ww.storage.qdrant.edge import QdrantEdgeIndex
from ww.storage.sqlite.db import SQLiteDatabase

DIM = 8


@pytest.fixture
def disk(tmp_path: Path) -> Iterator[Path]:
    with tmpfs(tmp_path / "mnt", 64) as mnt:
        yield mnt


def _item() -> VectorItem:
    return VectorItem(uuid4(), np.ones(DIM, dtype=np.float32), {"session_id": "s"})


def test_writes_stop_at_the_watermark_and_deletes_at_the_reserve(disk: Path) -> None:
    guard = DiskGuard(disk, 32, max_age_s=0)
    guard.check("sqlite")  # an empty 64 MB disk
    fill_to(disk / "filler", 24)
    with pytest.raises(InsufficientStorageError) as err:
        guard.check("sqlite")
    message = str(err.value)
    assert "24 MB free" in message and "WW_MIN_FREE_DISK_MB=32" in message
    assert guard.last_error is not None and guard.last_error.code == "watermark"
    assert not guard.writable()
    with freeing():
        guard.check("sqlite")  # 24 MB is above the reserve of 16
    fill_to(disk / "filler", 10)
    with freeing(), pytest.raises(InsufficientStorageError, match="deletes need 16 MB"):
        guard.check("sqlite")
    (disk / "filler").unlink()
    guard.check("sqlite")
    assert guard.writable()


def test_a_cached_reading_is_refreshed(disk: Path) -> None:
    guard = DiskGuard(disk, 32, max_age_s=3600)
    guard.check("sqlite")
    fill_to(disk / "filler", 10)
    guard.check("sqlite")  # the cached reading still says the disk is empty
    guard.refresh()  # what the maintenance loop does on every pass
    with pytest.raises(InsufficientStorageError):
        guard.check("sqlite")


def test_sqlite_full_is_insufficient_storage_and_recorded(disk: Path) -> None:
    guard = DiskGuard(disk, 0)  # no watermark: SQLite itself finds the disk full

    async def run() -> None:
        db = SQLiteDatabase(disk / "ww.sqlite3", disk=guard)
        await db.open()
        try:
            await db.write(lambda c: c.execute("CREATE TABLE t (x BLOB)"))
            fill_to(disk / "filler", 0)
            with pytest.raises(InsufficientStorageError, match="data directory is full"):
                for _ in range(64):
                    await db.write(
                        lambda c: c.execute("INSERT INTO t VALUES (randomblob(1048576))")
                    )
            (disk / "filler").unlink()
            # Space back: the database works and kept what it committed.
            await db.write(lambda c: c.execute("INSERT INTO t VALUES (x'00')"))
            assert await db.read(lambda c: c.execute("SELECT count(*) FROM t").fetchone()[0]) > 0
        finally:
            await db.close()

    asyncio.run(run())
    assert guard.last_error is not None
    assert (guard.last_error.component, guard.last_error.code) == ("sqlite", "disk_full")


def test_vector_writes_are_refused_before_they_touch_a_mapped_page(disk: Path) -> None:
    guard = DiskGuard(disk, 16, max_age_s=0)

    async def run() -> None:
        index = QdrantEdgeIndex(disk / "vectors", DIM, disk=guard)
        await index.open()
        try:
            kept = _item()
            await index.upsert("s", [kept])
            # Fill the disk past the watermark: an upsert into the sparse mapped files
            # would now be a SIGBUS; the guard refuses it first.
            fill_to(disk / "filler", 8)
            with pytest.raises(InsufficientStorageError):
                await index.upsert("s", [_item()])
            assert await index.ids("s") == {kept.id}  # reads go on
            with freeing():
                await index.delete("s", [kept.id])  # above the reserve of 8
            assert await index.ids("s") == set()
        finally:
            (disk / "filler").unlink(missing_ok=True)
            await index.close()

    asyncio.run(run())


def test_startup_refuses_in_one_line_without_room_for_the_indexes(disk: Path) -> None:
    guard = DiskGuard(disk, 16)
    assert guard.startup_error(0) is None  # 64 MB free, 16 needed
    line = guard.startup_error(3)
    assert line is not None and "\n" not in line
    assert f"{free_mb(disk):.0f} MB free, 208 MB needed to start" in line
    assert DiskGuard(disk, 0).startup_error(3) is None  # the check turned off
