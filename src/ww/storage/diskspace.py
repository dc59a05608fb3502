"""The free-space watermark of the data directory (``WW_MIN_FREE_DISK_MB``).

Qdrant Edge writes through memory-mapped files. A write that touches a page the file system
cannot back any more is not an error the library could return: the kernel kills the process
with SIGBUS. So the embedded stores ask this guard before every write, and refuse it with
``InsufficientStorageError`` (HTTP 507) while the data directory's file system has less
than the watermark free. Deletes are what frees space; they go on down to a smaller
reserve (half the watermark), as Elasticsearch's flood-stage watermark still lets an index
be deleted. Reads never ask.

The reading is cached for ``max_age_s`` (one ``statvfs`` costs ~2 µs, but a batch of writes
asks for every store call) and refreshed by the maintenance loop. Only the embedded stores
attach to the guard: with Neo4j and a Qdrant server the data lives elsewhere and the
watermark guards nothing (health still reports the local free space).
"""

from __future__ import annotations

import contextvars
import errno
import logging
import os
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from ww.storage.ports import StoreUnavailableError

__all__ = [
    "EDGE_LOAD_HEADROOM_MB",
    "DiskGuard",
    "InsufficientStorageError",
    "WriteError",
    "WriteErrorCode",
    "freeing",
    "guard_for",
    "is_disk_full",
    "learning_skipped_when_full",
]

log = logging.getLogger(__name__)

MB = 1024 * 1024

# What opening one Qdrant Edge index may newly allocate. Its files are sparse (an empty
# index: 157 MB apparent, 0.3 MB on ext4), and on ext4 a read of a hole allocates nothing.
# On tmpfs it does: loading faults in the 32 MB vector chunk and each payload index's 4 MB
# page (7 of them), and an index of 2,000 points grew from 24 to 93 MB on re-open.
EDGE_LOAD_HEADROOM_MB = 64

# Set while a request frees space (DELETE): its writes may go down to the reserve.
_freeing: contextvars.ContextVar[bool] = contextvars.ContextVar("ww_disk_freeing", default=False)


class InsufficientStorageError(StoreUnavailableError):
    """A write refused because the data directory's disk is (nearly) full: HTTP 507.

    A ``StoreUnavailableError`` so that every path which already degrades when a store
    cannot write (recall without the vector index, reconsolidation) degrades here too."""


@contextmanager
def freeing() -> Iterator[None]:
    """Writes inside are deletes: they may use the space down to the reserve."""
    token = _freeing.set(True)
    try:
        yield
    finally:
        _freeing.reset(token)


def is_disk_full(exc: BaseException) -> bool:
    """Whether ``exc`` is a store's way of saying the disk is full."""
    if isinstance(exc, sqlite3.OperationalError):
        return getattr(exc, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL
    if isinstance(exc, OSError):
        return exc.errno in (errno.ENOSPC, errno.EDQUOT)
    # Qdrant Edge reports I/O errors as RuntimeError with the OS's text.
    return isinstance(exc, RuntimeError) and "No space left on device" in str(exc)


WriteErrorCode = Literal["watermark", "disk_full"]


@dataclass(frozen=True, slots=True)
class WriteError:
    """The last write a full disk failed or the watermark refused: no content, only what
    an operator needs."""

    component: str
    code: WriteErrorCode
    at: datetime


class DiskGuard:
    """Free space of ``path``'s file system against ``min_free_mb`` (0: never refuse)."""

    def __init__(
        self,
        path: Path,
        min_free_mb: int,
        *,
        max_age_s: float = 1.0,
        statvfs: Callable[[str], os.statvfs_result] = os.statvfs,
    ) -> None:
        self.path = Path(path)
        self.min_free_mb = min_free_mb
        # Deletes need room too: SQLite's WAL and Qdrant's WAL grow before space comes back.
        self.reserve_mb = min_free_mb // 2
        self.local_stores = 0
        self.last_error: WriteError | None = None
        self._max_age_s = max_age_s
        self._statvfs = statvfs
        self._free_mb = float("inf")
        self._read_at = float("-inf")

    def attach(self) -> DiskGuard:
        """A store that writes into ``path`` says so; health reports "degraded" only then."""
        self.local_stores += 1
        return self

    def _existing(self) -> Path:
        p = self.path
        while not p.exists() and p != p.parent:
            p = p.parent
        return p

    def refresh(self) -> float:
        st = self._statvfs(str(self._existing()))
        self._free_mb = st.f_bavail * st.f_frsize / MB
        self._read_at = time.monotonic()
        return self._free_mb

    def free_mb(self) -> float:
        if time.monotonic() - self._read_at > self._max_age_s:
            return self.refresh()
        return self._free_mb

    def writable(self) -> bool:
        """Whether a write (not a delete) would be accepted now."""
        return self.min_free_mb <= 0 or self.free_mb() >= self.min_free_mb

    def check(self, component: str, extra_mb: float = 0.0) -> None:
        """Raise ``InsufficientStorageError`` unless ``extra_mb`` more fits above the
        watermark (above the reserve inside ``freeing()``)."""
        if self.min_free_mb <= 0:
            return
        floor = self.reserve_mb if _freeing.get() else self.min_free_mb
        free = self.free_mb()
        if free - extra_mb >= floor:
            return
        self.record(component, "watermark")
        kind = "deletes" if _freeing.get() else "writes"
        raise InsufficientStorageError(
            component,
            f"insufficient storage: {free:.0f} MB free in the data directory, {kind} need "
            f"{floor + extra_mb:.0f} MB (WW_MIN_FREE_DISK_MB={self.min_free_mb}); "
            "reads and deletes still work",
        )

    def record(self, component: str, code: WriteErrorCode) -> None:
        self.last_error = WriteError(component, code, datetime.now(UTC))

    def full(self, component: str, exc: BaseException) -> InsufficientStorageError:
        """The error for a store's own disk-full failure ``exc``; recorded for health and
        forcing the next reading to be fresh."""
        self.record(component, "disk_full")
        self._read_at = float("-inf")
        return InsufficientStorageError(
            component,
            f"insufficient storage: the disk of the data directory is full ({self.free_mb():.0f}"
            f" MB free, WW_MIN_FREE_DISK_MB={self.min_free_mb})",
        )

    def startup_need_mb(self, edge_indexes: int) -> int:
        return self.min_free_mb + edge_indexes * EDGE_LOAD_HEADROOM_MB

    def startup_error(self, edge_indexes: int) -> str | None:
        """One line refusing start-up, or None when there is room to open the stores."""
        need = self.startup_need_mb(edge_indexes)
        free = self.refresh()
        if self.min_free_mb <= 0 or free >= need:
            return None
        return (
            f"not enough free disk space in {self._existing()}: {free:.0f} MB free, "
            f"{need} MB needed to start (WW_MIN_FREE_DISK_MB={self.min_free_mb} plus "
            f"{EDGE_LOAD_HEADROOM_MB} MB for each of {edge_indexes} vector indexes to load)"
        )


@contextmanager
def learning_skipped_when_full() -> Iterator[None]:
    """Recall answers below the watermark: its learning writes (access counts, FSRS
    reviews, the recall log, Hebbian edges) stop at the first one refused instead of
    failing the recall. Health says "learning": "paused" while writes are refused."""
    try:
        yield
    except InsufficientStorageError as exc:
        log.warning("recall answered without learning: %s", exc)


_guards: dict[tuple[Path, int], DiskGuard] = {}


def guard_for(data_dir: Path, min_free_mb: int) -> DiskGuard:
    """The one guard of a data directory in this process, shared by its stores, the
    maintenance loop and health."""
    key = (Path(data_dir).absolute(), min_free_mb)
    guard = _guards.get(key)
    if guard is None:
        guard = _guards[key] = DiskGuard(key[0], min_free_mb)
    return guard
