"""The control plane of one worker: current flags and emergency level, shared through the
control store (``ww.storage.ports.control``).

Precedence, per flag: a value set at run time (kept in the store) wins over the start
value from ``WW_FLAG_<NAME>``, which wins over the default. A change made here applies in
this worker at once; every other worker sees it at its next poll, which reads only the
store's change counter every ``poll_s`` seconds (0.5 s by default) and reloads the state
when the counter moved.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from ww.control.flags import Flags, flag_sources
from ww.engine.periodic import Periodic
from ww.storage.ports.control import AuditRecord, ControlState, ControlStore, Emergency, Level

__all__ = ["POLL_SECONDS", "ControlPlane", "FlagState", "Source"]

log = logging.getLogger(__name__)

POLL_SECONDS = 0.5
Source = Literal["env", "runtime", "default"]


@dataclass(frozen=True, slots=True)
class FlagState:
    name: str
    enabled: bool
    # The start value (WW_FLAG_<NAME>, else the default): what the flag had without runtime
    # changes.
    default: bool
    source: Source


class ControlPlane(Periodic):
    """``apply`` receives every new ``Flags`` snapshot (the engine's ``flags`` attribute).
    ``start``/``stop`` run the poll in the background."""

    _log = log
    _what = "control refresh"

    def __init__(
        self,
        store: ControlStore,
        start: Flags,
        apply: Callable[[Flags], None],
        *,
        poll_s: float = POLL_SECONDS,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.store = store
        self.start_flags = start
        self._start_sources = flag_sources(start)
        self._apply = apply
        self.interval_s = poll_s
        self._failing = False
        self._clock = clock
        self._state = ControlState(0, {}, Emergency())
        self._current = start

    # -- reading -------------------------------------------------------------------------
    def flags(self) -> Flags:
        """The flags in force now (what the engine reads; for other readers too)."""
        return self._current

    @property
    def emergency(self) -> Emergency:
        return self._state.emergency

    def flag(self, name: str) -> FlagState:
        """KeyError for a name that is no flag."""
        if name not in Flags.model_fields:
            raise KeyError(name)
        start = getattr(self.start_flags, name)
        runtime = self._state.flags.get(name)
        source: Source = "runtime" if runtime is not None else self._start_sources[name]  # type: ignore[assignment]
        return FlagState(name, getattr(self._current, name), bool(start), source)

    def all_flags(self) -> list[FlagState]:
        return [self.flag(name) for name in Flags.model_fields]

    async def audit(self, limit: int, before: int | None = None) -> list[AuditRecord]:
        return await self.store.audit(limit, before)

    # -- changing ------------------------------------------------------------------------
    async def set_flag(self, name: str, enabled: bool, who: str) -> tuple[bool, FlagState]:
        """Set a flag for every worker; the value it had before, and its state now."""
        start = self.flag(name).default
        old = await self.store.set_flag(name, enabled, start=start, who=who, at=self._clock())
        await self.refresh()
        return old, self.flag(name)

    async def set_emergency(self, level: Level, reason: str | None, who: str) -> Emergency:
        """Set the level for every worker; answers the one it replaced."""
        old = await self.store.set_emergency(level, reason, who=who, at=self._clock())
        await self.refresh()
        return old

    # -- sharing -------------------------------------------------------------------------
    async def refresh(self, version: int | None = None) -> None:
        """Reload the state unless it is at ``version`` already."""
        if version is not None and version == self._state.version:
            return
        state = await self.store.state()
        if state.version < self._state.version:
            return  # a poll's read that a change made here since has overtaken
        known = {n: v for n, v in state.flags.items() if n in Flags.model_fields}
        self._state = state
        current = self.start_flags.model_copy(update=known)
        if current != self._current:
            self._current = current
            self._apply(current)

    async def load(self) -> None:
        """The stored state, at start-up; says which stored values override the start ones."""
        await self.refresh()
        for name, value in sorted(self._state.flags.items()):
            if name in Flags.model_fields and value != getattr(self.start_flags, name):
                log.warning(
                    "flag %s is %s: set at run time (kept in the record store), it wins over "
                    "its start value %s",
                    name,
                    str(value).lower(),
                    str(getattr(self.start_flags, name)).lower(),
                )
        if self._state.emergency.level is not Level.NONE:
            log.warning("emergency level %s is in force", self._state.emergency.level.value)

    async def run_once(self) -> None:
        try:
            await self.refresh(await self.store.version())
        except Exception as exc:  # a store outage must not end the poll, nor flood the log
            if not self._failing:
                # The class only: a driver's message may carry an address.
                log.warning(
                    "control state not refreshed (%s); keeping the last one until the store "
                    "answers",
                    type(exc).__name__,
                )
            self._failing = True
        else:
            self._failing = False
