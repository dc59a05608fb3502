"""Enforces the control plane's blocks before any route runs: 503 in the error envelope.

- ``maintenance_mode`` or emergency LOCKDOWN: everything but ``open_during_lockdown`` (the
  service description, health, the docs and ``/api/v1/control/*``) is refused.
- ``read_only_mode`` or emergency LIMITED: every write is refused. A write is a POST, PUT,
  PATCH or DELETE, except the POSTs in ``READ_POSTS``, which only search (recall, how-to,
  spreading activation) and stay open; ``/api/v1/control/*`` always stays open, so an
  operator can lift the block.

The state is read from ``ww.control.runtime.ControlPlane`` at each request: a change made in
this worker applies to the next request, one made in another within its poll.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from ww.api.auth import METRICS_PATH, is_exempt
from ww.api.errors import error_response
from ww.control.runtime import ControlPlane
from ww.storage.ports.control import Level

__all__ = ["READ_POSTS", "RETRY_AFTER_S", "ControlGate", "blocked", "open_during_lockdown"]

CONTROL_PREFIX = "/api/v1/control"
# POST routes that read: a query travels in their body, nothing is created or changed (a
# recall with ``learn`` records the retrieval as a review, as it does on any day).
READ_POSTS = frozenset(
    {
        "/api/v1/recall",
        "/api/v1/episodes/recall",
        "/api/v1/entities/recall",
        "/api/v1/skills/recall",
        "/api/v1/entities/spread-activation",
        "/api/v1/skills/how-to",
    }
)
_WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# A hint only: nobody knows when an operator will lift the block.
RETRY_AFTER_S = 30


def open_during_lockdown(path: str) -> bool:
    """The exempt paths (``ww.api.auth.is_exempt``, the docs' assets included) and the
    metrics: a lockdown is when an operator most wants to see them."""
    return is_exempt(path) or path == METRICS_PATH


def _control(path: str) -> bool:
    return path == CONTROL_PREFIX or path.startswith(CONTROL_PREFIX + "/")


def blocked(control: ControlPlane, method: str, path: str) -> tuple[str, str] | None:
    """The error code and message refusing ``method path`` now, or None to let it through."""
    if _control(path):
        return None
    flags, emergency = control.flags(), control.emergency
    reason = f": {emergency.reason}" if emergency.reason else ""
    verb = method.upper()
    write = verb in _WRITES and not (verb == "POST" and (path.rstrip("/") or "/") in READ_POSTS)
    open_path = open_during_lockdown(path)
    # LOCKDOWN and maintenance are read-only too: the open paths only read.
    if not open_path or write:
        if emergency.level is Level.LOCKDOWN:
            return "emergency_lockdown", (
                f"emergency level LOCKDOWN{reason}; only health and control answer"
            )
        if flags.maintenance_mode:
            return "maintenance", "maintenance_mode is on; only health and control answer"
    if not write:
        return None
    if emergency.level is Level.LIMITED:
        return "emergency_limited", f"emergency level LIMITED (read-only){reason}; writes wait"
    if flags.read_only_mode:
        return "read_only", "read_only_mode is on; writes wait until it is turned off"
    return None


class ControlGate:
    """Sits inside authentication, so an anonymous caller hears 401, not the control state.
    Reads ``app.state.control`` per request: it exists only once the lifespan started."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        control = getattr(scope["app"].state, "control", None) if scope["type"] == "http" else None
        refusal = blocked(control, scope["method"], scope["path"]) if control else None
        if refusal is None:
            await self.app(scope, receive, send)
            return
        code, message = refusal
        rid = scope.get("state", {}).get("request_id")
        response = error_response(503, code, message, rid, {"Retry-After": str(RETRY_AFTER_S)})
        await response(scope, receive, send)
