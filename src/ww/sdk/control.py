"""``client.control``: the operator's control plane (``/api/v1/control``, the admin role):
runtime flags, the audit of their changes, the emergency level and the circuit breakers.

The control routes do not take an ``Idempotency-Key``, so their POSTs and the flag PATCH
are not retried after a 503 or a lost connection (a repeat would be audited twice); only
a circuit reset, which leaves the same state however often it is sent, is.
"""

from __future__ import annotations

from typing import Generic, Literal, TypeVar

from ww.models import control as ctl
from ww.sdk._core import Call, parse_as
from ww.sdk._ops import Resource, Runner, get, op, page, pages, patch

__all__ = ["Audit", "Circuits", "Control", "Emergency", "Flags"]

M = TypeVar("M")  # Sync or Async (ww.sdk._ops)
L = TypeVar("L")  # the list's model
R = TypeVar("R")  # one item's

_CONTROL = "/api/v1/control"


class _Named(Resource[M], Generic[M, L, R]):
    """Things known by name at ``path``: ``list()`` them all, ``get(name)`` one."""

    path: str
    listing: type[L]
    item: type[R]

    @op
    def list(self) -> Call[L]:
        return get(self.path, self.listing)

    @op
    def get(self, name: str, /) -> Call[R]:
        return get(f"{self.path}/{name}", self.item)


class Flags(_Named[M, ctl.FlagList, ctl.FlagReport]):
    """``client.control.flags``: every flag, its value now and where that value comes from."""

    path, listing, item = f"{_CONTROL}/flags", ctl.FlagList, ctl.FlagReport

    @op
    def set(self, name: str, /, enabled: bool) -> Call[ctl.FlagChange]:
        """Set a flag for every worker and across restarts (it wins over WW_FLAG_<NAME>);
        the answer has the value it had before."""
        return patch(f"{self.path}/{name}", ctl.FlagChange, None, {"enabled": enabled})


class Audit(Resource[M]):
    """``client.control.audit``: changes of flags and of the emergency level, newest first,
    each with who made it (the key id or JWT subject, never a key)."""

    @op
    def list(self, *, limit: int = 50, cursor: int | None = None) -> Call[ctl.AuditPage]:
        """One page; ``cursor`` is a page's ``next_cursor`` (older entries)."""
        return page(f"{_CONTROL}/audit", ctl.AuditPage, limit, cursor, {})

    list_all = pages(list, lambda page: page.items)


class Emergency(Resource[M]):
    """``client.control.emergency``: LIMITED makes the server read-only (a write raises
    ``UnavailableError`` with code ``emergency_limited``), LOCKDOWN answers only health, the
    docs and the control plane."""

    @op
    def get(self) -> Call[ctl.EmergencyReport]:
        return get(f"{_CONTROL}/emergency", ctl.EmergencyReport)

    @op
    def panic(
        self, level: Literal["LIMITED", "LOCKDOWN"] | ctl.Level, /, reason: str
    ) -> Call[ctl.EmergencyChange]:
        """Raise the level; ``reason`` is shown in the health report."""
        return _set_level("panic", level, reason)

    @op
    def recover(
        self, level: Literal["NONE", "LIMITED"] | ctl.Level = "NONE", /, reason: str | None = None
    ) -> Call[ctl.EmergencyChange]:
        """Lower the level (to NONE, or from LOCKDOWN to LIMITED); raising it is a 409."""
        return _set_level("recover", level, reason)


def _set_level(action: str, level: str, reason: str | None) -> Call[ctl.EmergencyChange]:
    path = f"{_CONTROL}/emergency/{action}"
    body = {"level": str(level), "reason": reason}
    return Call("POST", path, parse_as(ctl.EmergencyChange), json=body)


class Circuits(_Named[M, ctl.CircuitList, ctl.CircuitReport]):
    """``client.control.circuits``: the breakers of the worker that answers (with
    ``WW_API_WORKERS`` > 1 each worker has its own; ``worker_pid`` says whose)."""

    path, listing, item = f"{_CONTROL}/circuits", ctl.CircuitList, ctl.CircuitReport

    @op
    def reset(self, name: str, /) -> Call[ctl.CircuitReport]:
        """Close the circuit now: its next call goes to the dependency."""
        path = f"{self.path}/{name}"
        body = {"action": "reset"}
        return Call("POST", path, parse_as(ctl.CircuitReport), json=body, upsert=True)


class Control(Resource[M]):
    """``client.control``: ``flags``, ``audit``, ``emergency`` and ``circuits``; admin
    credentials (``admin_key``, an admin API key or an admin JWT)."""

    def __init__(self, runner: Runner) -> None:
        super().__init__(runner)
        self.flags: Flags[M] = Flags(runner)
        self.audit: Audit[M] = Audit(runner)
        self.emergency: Emergency[M] = Emergency(runner)
        self.circuits: Circuits[M] = Circuits(runner)
