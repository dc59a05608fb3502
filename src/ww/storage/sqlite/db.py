"""One SQLite file shared by the embedded stores: a writer thread and a pool of readers.

Writes run on one dedicated thread and connection (SQLite serialises writers anyway); reads
run on a small pool of threads, each with its own connection. The event loop never waits on
SQLite. The record, entity and skill stores of one data directory share one instance.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import sqlite3
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import IO, TypeVar, cast

from ww.storage.diskspace import DiskGuard, InsufficientStorageError, is_disk_full
from ww.storage.ports import StoreUnavailableError
from ww.storage.sqlite.schema import migrate

__all__ = ["LOCK_SUFFIX", "SQLiteDatabase", "default_readers"]

# Beside the database file: every process with it open holds a shared flock on it, and
# scripts/backup.sh and restore.sh --data-dir take it exclusively, so a copy is never taken
# of (nor a restore made over) a live WAL database, whatever the vector backend.
LOCK_SUFFIX = ".lock"

T = TypeVar("T")


def default_readers(cpus: int | None = None) -> int:
    """Reader threads for a machine with ``cpus`` cores: half of them, between 2 and 4.

    sqlite3 releases the GIL only while a statement runs; the Python around each read needs
    it. More readers than that leaves the threads queueing for the GIL: on 2 cores, 8
    concurrent recalls at 100k memories ran at 39 recalls/s with 4 readers, 44 with 2 and
    47 with 1 (four runs each). Two stay so that one long read, such as building a session's
    keyword index, does not hold up every other.
    """
    return min(4, max(2, (cpus or os.cpu_count() or 2) // 2))


def _kept_on_thread(result: T) -> T:
    """``result``, unless it is a cursor: that is closed here, on the thread that ran it,
    and ``None`` goes back instead.

    A cursor freed on another thread (where the caller drops it) resets its statement
    there, and the connection's statement cache may hand that same statement to the next
    write at that moment: sqlite3 then fails the write with ``InterfaceError: bad parameter
    or other API misuse``. Callbacks such as ``lambda c: c.executemany(...)`` return their
    cursor without meaning to; closing it here covers every one of them at once.
    """
    if isinstance(result, sqlite3.Cursor):
        result.close()
        return cast(T, None)
    return result


class SQLiteDatabase:
    """``path`` may be ``":memory:"`` for a throwaway database. ``disk``, when given,
    refuses writes below its free-space watermark before they start."""

    def __init__(
        self, path: Path | str, *, readers: int | None = None, disk: DiskGuard | None = None
    ) -> None:
        self._path = str(path)
        self._disk = disk.attach() if disk is not None else None
        self._conn: sqlite3.Connection | None = None
        self._closed = False
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ww-sqlite-write")
        # WAL lets readers run beside the writer and each other, and sqlite3 releases the
        # GIL while a statement runs, so concurrent recalls overlap on several cores. An
        # in-memory database exists only in its one connection, so it reads on the writer.
        self._readers: ThreadPoolExecutor | None = None
        if self._path != ":memory:":
            self._readers = ThreadPoolExecutor(
                max_workers=readers or default_readers(), thread_name_prefix="ww-sqlite-read"
            )
        self._local = threading.local()
        self._reader_conns: list[sqlite3.Connection] = []
        self._reader_lock = threading.Lock()
        self._lock_file: IO[bytes] | None = None

    def _take_lock(self) -> None:
        """Share the lock with every other opener; refuse while a backup or restore holds it."""
        f = open(self._path + LOCK_SUFFIX, "ab")  # noqa: SIM115 -- held open while in use
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            f.close()
            raise StoreUnavailableError(
                "sqlite", "the data directory is locked by a backup or restore"
            ) from None
        self._lock_file = f

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA busy_timeout=5000")
        return conn

    def _reader_conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._connect()
            self._local.conn = conn
            with self._reader_lock:
                self._reader_conns.append(conn)
        return conn

    async def _submit(
        self, executor: ThreadPoolExecutor, fn: Callable[[sqlite3.Connection], T], reader: bool
    ) -> T:
        def call() -> T:
            if self._conn is None:
                raise StoreUnavailableError("sqlite", "store is closed")
            try:
                result = fn(self._reader_conn() if reader else self._conn)
            except sqlite3.OperationalError as exc:
                if is_disk_full(exc):
                    raise self._full(exc) from exc
                raise StoreUnavailableError("sqlite", str(exc)) from exc
            return _kept_on_thread(result)

        if self._closed:
            raise StoreUnavailableError("sqlite", "store is closed")
        return await asyncio.get_running_loop().run_in_executor(executor, call)

    def _full(self, exc: sqlite3.OperationalError) -> InsufficientStorageError:
        if self._disk is not None:
            return self._disk.full("sqlite", exc)
        return InsufficientStorageError("sqlite", "insufficient storage: the disk is full")

    async def read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run a read-only ``fn`` on a reader connection."""
        if self._readers is None:
            return await self._submit(self._writer, fn, reader=False)
        return await self._submit(self._readers, fn, reader=True)

    async def write(
        self,
        fn: Callable[[sqlite3.Connection], T],
        committed: Callable[[T], None] | None = None,
    ) -> T:
        """Run ``fn`` in one immediate transaction on the writer connection.

        ``committed`` gets ``fn``'s result after COMMIT, still on the writer thread, so
        state derived from the rows (the in-memory keyword index) follows the writes in
        commit order and never sees one that was rolled back.
        """

        def tx(conn: sqlite3.Connection) -> T:
            conn.execute("BEGIN IMMEDIATE")
            try:
                result = fn(conn)
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
            result = _kept_on_thread(result)
            if committed is not None:
                committed(result)
            return result

        if self._disk is not None:
            self._disk.check("sqlite")
        return await self._submit(self._writer, tx, reader=False)

    async def open(self) -> None:
        def connect() -> None:
            if self._path != ":memory:":
                Path(self._path).parent.mkdir(parents=True, exist_ok=True)
                self._take_lock()
            conn = self._connect()
            conn.execute("PRAGMA journal_mode=WAL")
            # NORMAL in WAL mode keeps every committed transaction across a process kill;
            # only a power loss can drop the last ones.
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA foreign_keys=ON")
            migrate(conn)
            self._conn = conn

        await asyncio.get_running_loop().run_in_executor(self._writer, connect)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._readers is not None:
            self._readers.shutdown(wait=True)
        with self._reader_lock:
            for conn in self._reader_conns:
                conn.close()
            self._reader_conns.clear()

        def disconnect() -> None:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
            if self._lock_file is not None:
                self._lock_file.close()  # closing the file drops the lock
                self._lock_file = None

        await asyncio.get_running_loop().run_in_executor(self._writer, disconnect)
        self._writer.shutdown(wait=True)
