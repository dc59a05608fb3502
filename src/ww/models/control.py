"""The control plane's types: emergency levels, flags, the audit and the circuit breakers.

Beside the other domain types so that a client (``ww.sdk``) reads and sends them without
importing the stores or FastAPI; the routes (``ww.api.routers.control`` and ``circuits``)
answer with these very models.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "AuditEntry",
    "AuditKind",
    "AuditPage",
    "CircuitAction",
    "CircuitList",
    "CircuitReport",
    "CircuitState",
    "EmergencyChange",
    "EmergencyReport",
    "FlagChange",
    "FlagList",
    "FlagPatch",
    "FlagReport",
    "Level",
    "PanicBody",
    "RecoverBody",
]


class Level(StrEnum):
    """Emergency levels, in order: LIMITED is read-only, LOCKDOWN answers only health and
    control."""

    NONE = "NONE"
    LIMITED = "LIMITED"
    LOCKDOWN = "LOCKDOWN"


class CircuitState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half-open"


class FlagReport(BaseModel):
    name: str
    enabled: bool
    default: bool = Field(description="The start value: WW_FLAG_<NAME> if set, else built-in.")
    description: str
    source: Literal["env", "runtime", "default"] = Field(
        description="runtime: set through this API (kept in the record store, wins over "
        "WW_FLAG_<NAME>); env: the WW_FLAG_<NAME> start value; default: built-in."
    )


class FlagList(BaseModel):
    flags: list[FlagReport]


class FlagPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    enabled: bool


class FlagChange(BaseModel):
    flag: FlagReport
    previous: bool


class EmergencyReport(BaseModel):
    level: Level
    reason: str | None = None
    since: datetime | None = Field(None, description="When the level was last set.")
    set_by: str | None = Field(None, description="The principal id that set it.")


class EmergencyChange(BaseModel):
    emergency: EmergencyReport
    previous: Level


class PanicBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    level: Literal["LIMITED", "LOCKDOWN"] = Field(
        description="LIMITED: read-only (every write gets 503); LOCKDOWN: only health, the "
        "docs and /api/v1/control answer."
    )
    reason: str = Field(min_length=1, max_length=500, description="Shown in /api/v1/health.")


class RecoverBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    level: Literal["NONE", "LIMITED"] = Field(
        "NONE", description="NONE: back to normal; LIMITED: from LOCKDOWN to read-only."
    )
    reason: str | None = Field(None, max_length=500)


class CircuitReport(BaseModel):
    name: str
    state: CircuitState
    failures: int = Field(description="Consecutive failures counted (reset by a success).")
    threshold: int = Field(description="Failures that open the circuit.")
    reset_timeout: float = Field(description="Seconds an open circuit waits for a trial call.")
    opened_at: datetime | None = Field(description="When it last opened; null while closed.")
    retry_at: datetime | None = Field(
        description="When a trial call may pass (half-open); null while closed."
    )
    rejected: int = Field(description="Calls refused at once since the worker started.")
    worker_pid: int = Field(description="The worker whose breaker this is.")


class CircuitList(BaseModel):
    circuits: list[CircuitReport]


class CircuitAction(BaseModel):
    model_config = ConfigDict(extra="forbid")
    action: Literal["reset"] = Field(description="`reset` closes the circuit now.")


class AuditKind(StrEnum):
    FLAG = "flag"
    EMERGENCY = "emergency"


class AuditEntry(BaseModel):
    id: int = Field(description="Increases with every change; pass as `cursor` to page.")
    at: datetime
    who: str = Field(description="The principal id (API key id or JWT subject), never a key.")
    kind: AuditKind
    name: str = Field(description="The flag, or `emergency`.")
    old: str = Field(description="`true`/`false` for a flag, the level for an emergency.")
    new: str
    reason: str | None = None


class AuditPage(BaseModel):
    items: list[AuditEntry]
    next_cursor: int | None = Field(
        None, description="Pass as `cursor` for the next (older) page; null on the last."
    )
