"""Background upkeep that must stay off the request path.

The reconciler repairs the two stores periodically, and the vector index is optimised only
after writes have gone quiet: Qdrant Edge's optimiser holds the GIL while it builds.
"""

from __future__ import annotations

import fcntl
import logging
import os
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import KW_ONLY, dataclass
from datetime import timedelta
from pathlib import Path
from typing import IO

from ww.engine.memory import MemoryEngine
from ww.engine.periodic import Periodic
from ww.storage.diskspace import DiskGuard, InsufficientStorageError

__all__ = ["HostLeader", "Maintenance", "warm"]

log = logging.getLogger(__name__)


@dataclass(eq=False)
class Maintenance(Periodic):
    _log = log
    _what = "maintenance"

    engine: MemoryEngine
    _: KW_ONLY
    interval_s: float = 30.0
    quiet_s: float = 10.0
    indexing_threshold: int = 20_000
    grace_s: float = 60.0
    disk: DiskGuard | None = None
    # Other upkeep that rides on the same loop (the API's expired idempotency keys).
    chores: Sequence[Callable[[], Awaitable[object]]] = ()

    async def run_once(self) -> None:
        if self.disk is not None:
            # A fresh reading on every pass, so the watermark follows space freed or
            # taken by others even while no request comes.
            self.disk.refresh()
        try:
            await self._upkeep()
        except InsufficientStorageError as exc:
            # The stores refused before writing anything; the next pass tries again.
            log.warning("maintenance paused: %s", exc)

    async def _upkeep(self) -> None:
        # Pending records old enough that no request is still busy with them. The full
        # id-by-id comparison runs at start-up, or, where start-up trusted agreeing counts
        # after a clean close (ww.engine.close_mark), on the first pass here, beside live
        # writes (how it stays correct: WriteProtocol._reconcile_session). Cleared only
        # once it went through, so a failed pass is tried again on the next.
        full, started = self.engine.ids_unverified, time.perf_counter()
        report = await self.engine.reconcile(full=full, grace=timedelta(seconds=self.grace_s))
        if full:
            self.engine.ids_unverified = False
            log.info(
                "episode ids compared in the background in %.1f s: %d re-indexed, "
                "%d orphan vectors removed",
                time.perf_counter() - started,
                report.indexed,
                report.orphans_removed,
            )
        for chore in self.chores:
            try:
                await chore()
            except Exception:  # one failing chore must not stop the index upkeep below
                log.exception("maintenance chore failed")
        if self.engine.seconds_since_last_write() < self.quiet_s:
            return
        if await self.engine.vectors.unindexed() >= self.indexing_threshold:
            log.info("optimising the vector index")
            await self.engine.vectors.optimize()


async def warm(engine: MemoryEngine) -> int:
    """Load the record store's per-session state (the embedded tier's keyword indexes)
    before the first recalls ask for it. Run as a task beside the server once it is up: a
    session of a million memories takes tens of seconds to load, which its first recall
    would otherwise wait. A failure only leaves the indexes to load on first use."""
    started = time.perf_counter()
    try:
        loaded = await engine.records.warm()
    except Exception as exc:
        log.warning("keyword indexes not loaded ahead of recall (they load on first use): %s", exc)
        return 0
    if loaded:
        log.info(
            "keyword indexes of %d sessions loaded in %.1f s",
            loaded,
            time.perf_counter() - started,
        )
    return loaded


class HostLeader:
    """Elects one of the workers on this host by an exclusive lock on ``path``.

    ``__call__`` tries the lock without blocking and keeps it once held, so exactly one
    worker answers True; the kernel frees the lock when that worker dies, and the next
    worker to ask takes over. Workers of one ``WW_API_WORKERS`` pool share the host and
    the data dir, which is all this needs.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file: IO[bytes] | None = None

    def __call__(self) -> bool:
        if self._file is not None:
            return True
        self.path.parent.mkdir(parents=True, exist_ok=True)
        f = open(self.path, "ab")  # noqa: SIM115 -- held open for as long as the lock is
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.close()
            return False
        self._file = f
        log.info("worker %d runs the scheduled passes", os.getpid())
        return True

    def release(self) -> None:
        if self._file is not None:
            file, self._file = self._file, None
            file.close()  # closing the file drops the lock
