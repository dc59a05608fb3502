"""A pass that runs in the background every ``interval_s`` seconds until stopped.

Upkeep (maintenance, consolidation) must never take the server down, so a failing pass is
logged, through the subclass's own logger, and the next one runs as planned.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import ClassVar

__all__ = ["Periodic"]


class Periodic:
    """Subclasses set ``interval_s``, ``_log`` and ``_what`` and define ``run_once``."""

    interval_s: float
    _log: ClassVar[logging.Logger]
    _what: ClassVar[str]
    _task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._loop())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def run_once(self) -> object:
        raise NotImplementedError

    def _due(self) -> bool:
        """Whether this process runs the pass now (several workers may share the work)."""
        return True

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.interval_s)
            try:
                if self._due():
                    await self.run_once()
            except Exception:  # upkeep must never take the server down
                self._log.exception("%s pass failed", self._what)
