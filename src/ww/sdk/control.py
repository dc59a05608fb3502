"""``client.control``: the operator's control plane (``/api/v1/control``, the admin role):
runtime flags, the audit of their changes, the emergency level and the circuit breakers.

The control routes do not take an ``Idempotency-Key``, so their POSTs and the flag PATCH
are not retried after a 503 or a lost connection (a repeat would be audited twice); only
a circuit reset, which leaves the same state however often it is sent, is.
"""

from __future__ import annotations

from typing import Literal, TypeVar

from ww.models.control import (
    AuditPage,
    CircuitList,
    CircuitReport,
    EmergencyChange,
    EmergencyReport,
    FlagChange,
    FlagList,
    FlagReport,
    Level,
)
from ww.sdk._core import Call, parse_as
from ww.sdk._ops import Resource, Runner, get, op, page, pages, patch

__all__ = ["Audit", "Circuits", "Control", "Emergency", "Flags"]

M = TypeVar("M")  # Sync or Async (ww.sdk._ops)

_CONTROL = "/api/v1/control"


class Flags(Resource[M]):
    """``client.control.flags``: every flag, its value now and where that value comes from."""

    @op
    def list(self) -> Call[FlagList]:
        return get(f"{_CONTROL}/flags", FlagList)

    @op
    def get(self, name: str, /) -> Call[FlagReport]:
        return get(f"{_CONTROL}/flags/{name}", FlagReport)

    @op
    def set(self, name: str, /, enabled: bool) -> Call[FlagChange]:
        """Set a flag for every worker and across restarts (it wins over WW_FLAG_<NAME>);
        the answer has the value it had before."""
        return patch(f"{_CONTROL}/flags/{name}", FlagChange, None, {"enabled": enabled})


class Audit(Resource[M]):
    """``client.control.audit``: changes of flags and of the emergency level, newest first,
    each with who made it (the key id or JWT subject, never a key)."""

    @op
    def list(self, *, limit: int = 50, cursor: int | None = None) -> Call[AuditPage]:
        """One page; ``cursor`` is a page's ``next_cursor`` (older entries)."""
        return page(f"{_CONTROL}/audit", AuditPage, limit, cursor, {})

    list_all = pages(list, lambda page: page.items)


class Emergency(Resource[M]):
    """``client.control.emergency``: LIMITED makes the server read-only (a write raises
    ``UnavailableError`` with code ``emergency_limited``), LOCKDOWN answers only health, the
    docs and the control plane."""

    @op
    def get(self) -> Call[EmergencyReport]:
        return get(f"{_CONTROL}/emergency", EmergencyReport)

    @op
    def panic(
        self, level: Literal["LIMITED", "LOCKDOWN"] | Level, /, reason: str
    ) -> Call[EmergencyChange]:
        """Raise the level; ``reason`` is shown in the health report."""
        body = {"level": str(level), "reason": reason}
        return Call("POST", f"{_CONTROL}/emergency/panic", parse_as(EmergencyChange), json=body)

    @op
    def recover(
        self, level: Literal["NONE", "LIMITED"] | Level = "NONE", /, reason: str | None = None
    ) -> Call[EmergencyChange]:
        """Lower the level (to NONE, or from LOCKDOWN to LIMITED); raising it is a 409."""
        body = {"level": str(level), "reason": reason}
        return Call("POST", f"{_CONTROL}/emergency/recover", parse_as(EmergencyChange), json=body)


class Circuits(Resource[M]):
    """``client.control.circuits``: the breakers of the worker that answers (with
    ``WW_API_WORKERS`` > 1 each worker has its own; ``worker_pid`` says whose)."""

    @op
    def list(self) -> Call[CircuitList]:
        return get(f"{_CONTROL}/circuits", CircuitList)

    @op
    def get(self, name: str, /) -> Call[CircuitReport]:
        return get(f"{_CONTROL}/circuits/{name}", CircuitReport)

    @op
    def reset(self, name: str, /) -> Call[CircuitReport]:
        """Close the circuit now: its next call goes to the dependency."""
        path = f"{_CONTROL}/circuits/{name}"
        body = {"action": "reset"}
        return Call("POST", path, parse_as(CircuitReport), json=body, upsert=True)


class Control(Resource[M]):
    """``client.control``: ``flags``, ``audit``, ``emergency`` and ``circuits``; admin
    credentials (``admin_key``, an admin API key or an admin JWT)."""

    def __init__(self, runner: Runner) -> None:
        super().__init__(runner)
        self.flags: Flags[M] = Flags(runner)
        self.audit: Audit[M] = Audit(runner)
        self.emergency: Emergency[M] = Emergency(runner)
        self.circuits: Circuits[M] = Circuits(runner)
