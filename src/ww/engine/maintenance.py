"""Background upkeep that must stay off the request path.

The reconciler repairs the two stores periodically, and the vector index is optimised only
after writes have gone quiet: Qdrant Edge's optimiser holds the GIL while it builds.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import timedelta

from ww.engine.memory import MemoryEngine

__all__ = ["Maintenance"]

log = logging.getLogger(__name__)


class Maintenance:
    def __init__(
        self,
        engine: MemoryEngine,
        *,
        interval_s: float = 30.0,
        quiet_s: float = 10.0,
        indexing_threshold: int = 20_000,
        grace_s: float = 60.0,
    ) -> None:
        self.grace_s = grace_s
        self.engine = engine
        self.interval_s = interval_s
        self.quiet_s = quiet_s
        self.indexing_threshold = indexing_threshold
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._loop())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def run_once(self) -> None:
        # Full id-by-id comparison runs at start-up; here only pending records old enough
        # that no request is still busy with them.
        await self.engine.reconcile(full=False, grace=timedelta(seconds=self.grace_s))
        if self.engine.seconds_since_last_write() < self.quiet_s:
            return
        if await self.engine.vectors.unindexed() >= self.indexing_threshold:
            log.info("optimising the vector index")
            await self.engine.vectors.optimize()

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.interval_s)
            try:
                await self.run_once()
            except Exception:  # upkeep must never take the server down
                log.exception("maintenance pass failed")
