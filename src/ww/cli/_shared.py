"""What every command shares: the global options (``Connection``), the client they open,
the output (a rich table for people, ``--json`` for scripts) and the exit codes.

Errors go to stderr with the server's code and request id; stdout carries only the answer,
so ``ww ... --json | jq`` never sees a message.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from enum import IntEnum
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from pydantic import BaseModel
from rich.console import Console
from rich.table import Table

from ww.addresses import url_address
from ww.sdk import (
    APIConnectionError,
    APIStatusError,
    AuthenticationError,
    BadRequestError,
    ConflictError,
    InsufficientStorageError,
    NotFoundError,
    PayloadTooLargeError,
    PermissionDeniedError,
    RateLimitedError,
    ServerError,
    UnavailableError,
    ValidationError,
    WorldWeaver,
)
from ww.sdk._core import jsonable

__all__ = [
    "ENV_URL",
    "Connection",
    "Exit",
    "JsonOpt",
    "connection",
    "emit",
    "err",
    "exit_code",
    "fail",
    "jsonable",
    "out",
    "record_table",
    "reply",
    "rows_table",
]

# The server the command line talks to: a client-side variable, not a server setting
# (ww.config.CLIENT_ENV_NAMES lists it so the server does not warn about it).
ENV_URL = "WW_API_URL"

out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)


class Exit(IntEnum):
    """The exit codes scripts can rely on (docs/cli.md, Exit codes)."""

    OK = 0
    FAILED = 1  # anything else: a server error, a missing extra
    USAGE = 2  # a bad option or argument (typer's own code)
    NOT_FOUND = 3  # 404: no such memory, session or route
    AUTH = 4  # 401 or 403: no credential, a wrong one, or too weak a role
    UNAVAILABLE = 5  # no answer, a timeout, 503, 507, or 429 after the retries
    REFUSED = 6  # the server refused the input: 400, 409, 413, 422


# Most specific first: the first class an error is an instance of decides.
_CODES: Sequence[tuple[type[Exception], Exit]] = (
    (NotFoundError, Exit.NOT_FOUND),
    (AuthenticationError, Exit.AUTH),
    (PermissionDeniedError, Exit.AUTH),
    (UnavailableError, Exit.UNAVAILABLE),
    (InsufficientStorageError, Exit.UNAVAILABLE),  # a full disk passes like an outage
    (RateLimitedError, Exit.UNAVAILABLE),
    (APIConnectionError, Exit.UNAVAILABLE),
    (BadRequestError, Exit.REFUSED),
    (ConflictError, Exit.REFUSED),
    (PayloadTooLargeError, Exit.REFUSED),
    (ValidationError, Exit.REFUSED),
    (ServerError, Exit.FAILED),
)


def exit_code(error: Exception) -> Exit:
    for cls, code in _CODES:
        if isinstance(error, cls):
            return code
    return Exit.FAILED


def fail(message: str, code: Exit = Exit.FAILED) -> NoReturn:
    err.print(f"error: {message}", markup=False, highlight=False)
    raise typer.Exit(int(code))


def _describe(error: Exception) -> str:
    if isinstance(error, APIStatusError):
        rid = f" (request id {error.request_id})" if error.request_id else ""
        return f"{error.status_code} {error.code}: {error.message}{rid}"
    return str(error)


@dataclass(frozen=True, slots=True)
class Connection:
    """Where and as whom the commands act: the global options of ``ww``."""

    url: str
    api_key: str | None
    admin_key: str | None
    token: str | None
    session_id: str | None
    embedded: bool
    data_dir: Path | None
    timeout: float

    @contextmanager
    def client(self) -> Iterator[WorldWeaver]:
        """The SDK client for this connection; an SDK error inside becomes a message on
        stderr and its exit code."""
        options: dict[str, Any] = {
            "api_key": self.api_key,
            "admin_key": self.admin_key,
            "token": self.token,
            "session_id": self.session_id,
            "timeout": self.timeout,
        }
        try:
            if self.embedded:
                opened = WorldWeaver.embedded(self.data_dir, **options)
            else:
                opened = WorldWeaver(self.url, **options)
            with opened as ww:
                yield ww
        except APIConnectionError as error:
            fail(f"no answer from {url_address(self.url)}: {error}", exit_code(error))
        except APIStatusError as error:
            fail(_describe(error), exit_code(error))
        except ImportError as error:  # embedded on a client-only install
            fail(str(error))


def connection(ctx: typer.Context) -> Connection:
    found = ctx.find_object(Connection)
    if found is None:  # a command invoked without the root callback (not through `ww`)
        raise RuntimeError("no connection: run the command through the `ww` app")
    return found


JsonOpt = Annotated[
    bool, typer.Option("--json", help="Print the answer as JSON on stdout, for scripts.")
]


def reply(
    ctx: typer.Context,
    as_json: bool,
    call: Callable[[WorldWeaver], Any],
    render: Callable[[Any], Any],
) -> None:
    """The whole of most commands: one SDK call on this connection, its answer printed."""
    with connection(ctx).client() as ww:
        answer = call(ww)
    emit(answer, as_json, render)


def emit(data: Any, as_json: bool, render: Callable[[Any], Any]) -> None:
    """The answer: JSON on stdout for ``--json``, else what ``render`` makes of it."""
    if as_json:
        sys.stdout.write(json.dumps(jsonable(data), indent=2, sort_keys=True) + "\n")
        sys.stdout.flush()
    else:
        out.print(render(data))


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, BaseModel | Mapping | list):
        return json.dumps(jsonable(value), sort_keys=True)
    return str(jsonable(value))


def record_table(record: BaseModel | Mapping[str, Any], title: str | None = None) -> Table:
    """One record as field / value rows."""
    fields = record.model_dump(mode="json") if isinstance(record, BaseModel) else record
    table = Table("field", "value", title=title, show_header=False)
    for name, value in fields.items():
        if name != "embedding":
            table.add_row(name, _cell(value))
    return table


def rows_table(
    rows: Sequence[Any], columns: Mapping[str, Callable[[Any], Any]], title: str | None = None
) -> Table:
    """Rows as a table; ``columns`` maps each header to how a row gives its cell."""
    table = Table(title=title)
    for header in columns:
        # An id is what the next command takes: shown whole, never cut or wrapped.
        whole = header == "id"
        table.add_column(header, no_wrap=whole, min_width=36 if whole else None)
    for row in rows:
        table.add_row(*(_cell(get(row)) for get in columns.values()))
    return table
