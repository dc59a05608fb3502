"""The API's side of the free-space watermark (``ww.storage.diskspace``): DELETE requests
may write down to the reserve, and health reports the disk."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from starlette.types import ASGIApp, Receive, Scope, Send

from ww.models.api import DiskReport, WriteErrorReport
from ww.storage.diskspace import DiskGuard, freeing

__all__ = ["DiskReport", "FreeingDeletesMiddleware", "WriteErrorReport", "disk_report"]

# A store's own "disk full" keeps health degraded this long after it happened, even when
# the free space read since is above the watermark (a quota, or space that came and went).
RECENT_ERROR = timedelta(seconds=60)


class FreeingDeletesMiddleware:
    """Runs every DELETE inside ``freeing()``: deletes are how space comes back."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "DELETE":
            with freeing():
                await self.app(scope, receive, send)
        else:
            await self.app(scope, receive, send)


def disk_report(guard: DiskGuard) -> tuple[DiskReport, bool]:
    """The report, and whether the disk makes this instance degraded."""
    free = guard.refresh()
    writable = guard.writable()
    err = guard.last_error
    recent_full = (
        err is not None and err.code == "disk_full" and datetime.now(UTC) - err.at < RECENT_ERROR
    )
    local = guard.local_stores > 0
    report = DiskReport(
        path=str(guard.path),
        free_mb=round(free, 1),
        min_free_mb=guard.min_free_mb,
        reserve_mb=guard.reserve_mb,
        writes="accepted" if writable or not local else "refused",
        learning="on" if writable or not local else "paused",
        local_stores=local,
        last_write_error=(
            WriteErrorReport(component=err.component, code=err.code, at=err.at)
            if err is not None
            else None
        ),
    )
    return report, local and (not writable or recent_full)
