"""The operator's commands: ``status``, ``sessions``, ``flags``, ``token`` and ``serve``.

The control plane (``/api/v1/control/*``: flags, emergency level, circuits) has no SDK
resource yet; its routes are reached with ``WorldWeaver.stream`` and read as JSON.
``status`` shows each of its sections only when the server answers that route (a 404
means a server without it)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Group

from ww.cli._shared import (
    Connection,
    Exit,
    JsonOpt,
    connection,
    emit,
    err,
    fail,
    record_table,
    reply,
    rows_table,
)
from ww.sdk import AuthenticationError, NotFoundError, PermissionDeniedError, WorldWeaver

__all__ = ["CONTROL", "flags", "mcp", "serve", "sessions", "status", "token"]

# The control plane's read routes, by the status section they fill.
CONTROL: Mapping[str, str] = {
    "flags": "/api/v1/control/flags",
    "emergency": "/api/v1/control/emergency",
    "circuits": "/api/v1/control/circuits",
}
_FLAGS = CONTROL["flags"]
_STATS_COLUMNS = {
    "session": lambda s: s.session_id,
    "episodes": lambda s: s.episodes,
    "entities": lambda s: s.entities,
    "skills": lambda s: s.skills,
    "last activity": lambda s: s.last_activity,
}


def _call(ww: WorldWeaver, method: str, path: str, body: Any = None) -> Any:
    with ww.stream(method, path, json=body) as response:
        response.read()
        return response.json() if response.content else None


def _control(ww: WorldWeaver, path: str) -> Any | None:
    """A control route's answer, or None on a server without that route or to a credential
    that may not read it (the control plane is the admin's)."""
    try:
        return _call(ww, "GET", path)
    except NotFoundError:
        return None
    except (AuthenticationError, PermissionDeniedError):
        err.print(f"{path}: needs admin credentials, left out", markup=False, highlight=False)
        return None


def status(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """Health, what the session holds, and the control plane where the server has it.
    Exits 5 when the server reports itself unavailable."""
    conn = connection(ctx)
    session = conn.session_id or "default"
    with conn.client() as ww:
        health = ww.health()
        try:
            counts: Any = ww.sessions.stats(session)
        except NotFoundError:  # a session that holds nothing yet
            counts = {"session_id": session, "episodes": 0, "entities": 0, "skills": 0}
        report: dict[str, Any] = {"health": health, "counts": counts}
        for section, path in CONTROL.items():
            answer = _control(ww, path)
            if answer is not None:
                report[section] = answer
    emit(
        report,
        as_json,
        lambda r: Group(*(record_table(v, title=k) for k, v in _tables(r).items())),
    )
    if health.status == "unavailable":
        raise typer.Exit(int(Exit.UNAVAILABLE))


def _tables(report: Mapping[str, Any]) -> dict[str, Any]:
    """Each section as a mapping a record table shows (lists keyed by position)."""
    out: dict[str, Any] = {}
    for name, value in report.items():
        if isinstance(value, list):
            value = {str(i): item for i, item in enumerate(value)}
        out[name] = value if not isinstance(value, str | int | float) else {name: value}
    return out


sessions = typer.Typer(help="List and delete sessions (admin credentials).", no_args_is_help=True)


@sessions.command("list")
def sessions_list(
    ctx: typer.Context,
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, help="Per page.")] = 100,
    every: Annotated[bool, typer.Option("--all", help="Every page.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Sessions in id order with what each holds."""
    with connection(ctx).client() as ww:
        found = (
            list(ww.sessions.list_all(limit=limit))
            if every
            else ww.sessions.list(limit=limit).sessions
        )
    emit(found, as_json, lambda rows: rows_table(rows, _STATS_COLUMNS, title="sessions"))


@sessions.command("delete")
def sessions_delete(
    ctx: typer.Context,
    session_id: Annotated[str, typer.Argument(help="The session to delete, whole.")],
    as_json: JsonOpt = False,
) -> None:
    """Delete everything a session holds."""
    reply(ctx, as_json, lambda ww: ww.sessions.delete(session_id), record_table)


flags = typer.Typer(help="Read and set feature flags (admin credentials).", no_args_is_help=True)


@flags.command("list")
def flags_list(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """Every flag and whether it is on."""
    reply(
        ctx, as_json, lambda ww: _call(ww, "GET", _FLAGS), lambda f: record_table(f, title="flags")
    )


@flags.command("set")
def flags_set(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The flag, e.g. hebbian.")],
    enabled: Annotated[bool, typer.Option("--on/--off", help="Turn it on or off.")],
    as_json: JsonOpt = False,
) -> None:
    """Turn a flag on or off on the running server."""
    change = {"enabled": enabled}
    reply(ctx, as_json, lambda ww: _call(ww, "PATCH", f"{_FLAGS}/{name}", change), record_table)


token = typer.Typer(help="Mint admin JWTs (needs WW_JWT_SECRET).", no_args_is_help=True)


@token.command("create")
def token_create(
    role: Annotated[str, typer.Option(help="admin or user.")] = "admin",
    ttl: Annotated[int, typer.Option(min=1, help="Seconds until it expires.")] = 3600,
    sub: Annotated[str | None, typer.Option(help="Who it is for (shown in logs).")] = None,
    session: Annotated[
        list[str] | None, typer.Option("--bind-session", help="Bind it to this session.")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Print a JWT signed with WW_JWT_SECRET (iss/aud from WW_JWT_ISSUER, WW_JWT_AUDIENCE):
    the same settings the server checks it with."""
    try:
        from ww.api.keys import Role
        from ww.api.token import mint
        from ww.config import ConfigError, Settings
    except ImportError as exc:
        fail(f'token create needs the server install: pip install "world-weaver[api]" ({exc})')
    try:
        made = mint(Settings(), role=Role(role), ttl_s=ttl, sub=sub, sessions=session)
    except ValueError as exc:  # an unknown role
        fail(str(exc), Exit.USAGE)
    except ConfigError as exc:
        fail(str(exc), Exit.USAGE)
    emit({"token": made}, as_json, lambda t: t["token"])


def serve(
    host: Annotated[str | None, typer.Option(help="Address (WW_API_HOST).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (WW_API_PORT).")] = None,
    data_dir: Annotated[
        Path | None, typer.Option("--data-dir", help="Data directory (WW_DATA_DIR).")
    ] = None,
    workers: Annotated[int | None, typer.Option(help="Processes (WW_API_WORKERS).")] = None,
) -> None:
    """Run the server, as `python -m ww.api.server` does (settings from WW_* and .env)."""
    try:
        from ww.api.server import main
    except ImportError as exc:
        fail(f'serve needs the server install: pip install "world-weaver[api]" ({exc})')
    given = {"--host": host, "--port": port, "--data-dir": data_dir, "--workers": workers}
    argv = [
        str(part) for name, value in given.items() if value is not None for part in (name, value)
    ]
    raise typer.Exit(main(argv))


def mcp(ctx: typer.Context) -> None:
    """Serve this memory to MCP clients (docs/mcp.md): over stdio by default, or
    `--transport streamable-http`; the options after `mcp` are those of `python -m ww.mcp`,
    and where, as whom and in which session come from ww's own options."""
    try:
        from ww.mcp.__main__ import main
    except ImportError as exc:
        fail(f'mcp needs the MCP extra: pip install "world-weaver[mcp]" ({exc})')
    conn: Connection = ctx.obj
    given: dict[str, object] = {"--api-key": conn.api_key, "--session": conn.session_id}
    if conn.embedded:
        given["--data-dir"] = conn.data_dir
    else:
        given["--url"] = conn.url
    argv = [str(part) for name, value in given.items() if value for part in (name, value)]
    main([*argv, *(["--embedded"] if conn.embedded else []), *ctx.args])
