"""Log set-up of the server: ``WW_LOG_FORMAT`` (``text`` or ``json``) and ``WW_LOG_LEVEL``,
and the access line written for each request.

The JSON form is one object per line: ``time``, ``level``, ``logger``, ``message``, the
traceback as ``exc_info`` when there is one, and the access line's fields (``ACCESS_FIELDS``)
on that line. The access line names the route *template*, never the raw path or query, and
the caller's key id, never a key: no memory content and no secret reach it.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from ww.config import LOG_LEVELS, LogFormat, Settings

__all__ = [
    "ACCESS_FIELDS",
    "ACCESS_LOGGER",
    "JsonFormatter",
    "access_line",
    "configure_early_logging",
    "configure_logging",
]

ACCESS_LOGGER = "ww.access"
ACCESS_FIELDS = (
    "request_id",
    "method",
    "route",
    "status",
    "duration_ms",
    "principal",
    "session",
)
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"


class JsonFormatter(logging.Formatter):
    """One JSON object per record (stdlib only: the fields are few and fixed)."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in ACCESS_FIELDS:
            value = record.__dict__.get(name)
            if value is not None:
                out[name] = value
        if record.exc_info:
            out["exc_info"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False, default=str)


def configure_logging(settings: Settings) -> None:
    """The root logger writes to stderr at ``WW_LOG_LEVEL`` in ``WW_LOG_FORMAT``; uvicorn's
    loggers reach it too (the server starts uvicorn without a logging config of its own)."""
    _configure(settings.log_format, settings.log_level)


def configure_early_logging(environ: Mapping[str, str]) -> None:
    """Logging for what is said while the settings load (their own warnings), in the format
    the environment asks for; an invalid value means text here, and the settings' own
    check then refuses it."""
    wanted = environ.get("WW_LOG_FORMAT", "").strip().lower()
    level = environ.get("WW_LOG_LEVEL", "").strip().upper()
    _configure(
        LogFormat.JSON if wanted == LogFormat.JSON.value else LogFormat.TEXT,
        level if level in LOG_LEVELS else "INFO",
    )


def _configure(log_format: LogFormat, level: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    if log_format is LogFormat.JSON:
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter(TEXT_FORMAT))
    logging.basicConfig(level=level, handlers=[handler], force=True)
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers.clear()
        logging.getLogger(name).propagate = True


def access_line(
    *,
    request_id: str | None,
    method: str,
    route: str,
    status: int,
    seconds: float,
    principal: str | None,
    session: str | None,
) -> None:
    """Write one request's access line (INFO on ``ww.access``)."""
    log = logging.getLogger(ACCESS_LOGGER)
    if not log.isEnabledFor(logging.INFO):
        return
    fields = {
        "request_id": request_id,
        "method": method,
        "route": route,
        "status": status,
        "duration_ms": round(seconds * 1000.0, 3),
        "principal": principal,
        "session": session,
    }
    log.info(
        "%s %s %d %.1f ms request=%s principal=%s session=%s",
        method,
        route,
        status,
        seconds * 1000.0,
        request_id,
        principal or "-",
        session or "-",
        extra=fields,
    )
