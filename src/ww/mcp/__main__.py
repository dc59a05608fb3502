"""``python -m ww.mcp``: World Weaver's MCP server (``docs/mcp.md``)."""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from pathlib import Path
from typing import cast, get_args

from ww.sdk import DEFAULT_URL

try:
    from ww.mcp.server import Listen, LogLevel, Target, Transport, run
except ModuleNotFoundError as exc:  # the client install without the mcp extra
    raise SystemExit(
        f"the MCP server needs the mcp extra ({exc.name} is not installed): "
        'pip install "world-weaver[mcp]"'
    ) from exc

__all__ = ["main", "parser"]


def parser() -> argparse.ArgumentParser:
    cli = argparse.ArgumentParser(
        prog="python -m ww.mcp",
        description="World Weaver's memory as an MCP server (stdio or streamable HTTP).",
    )
    cli.add_argument("--transport", choices=get_args(Transport), default="stdio")
    where = cli.add_argument_group("where memory lives")
    where.add_argument("--url", default=DEFAULT_URL, help="a World Weaver server")
    where.add_argument(
        "--api-key",
        default=os.environ.get("WW_API_KEY"),
        help="its API key (default: WW_API_KEY; prefer the variable: a flag shows in ps)",
    )
    where.add_argument(
        "--session",
        default=os.environ.get("WW_SESSION_ID"),
        help="the session of calls that name none (default: WW_SESSION_ID, else the server's)",
    )
    where.add_argument(
        "--embedded", action="store_true", help="run the engine in this process, no server"
    )
    where.add_argument("--data-dir", type=Path, help="the embedded engine's data (WW_DATA_DIR)")
    http = cli.add_argument_group("streamable HTTP")
    http.add_argument("--host", default=Listen().host)
    http.add_argument("--port", type=int, default=Listen().port)
    http.add_argument("--path", default=Listen().path)
    cli.add_argument("--log-level", choices=get_args(LogLevel), default="WARNING")
    return cli


def main(argv: Sequence[str] | None = None) -> None:
    args = parser().parse_args(argv)
    if args.data_dir is not None and not args.embedded:
        parser().error("--data-dir needs --embedded")
    target = Target(
        url=args.url,
        api_key=args.api_key or None,
        session_id=args.session or None,
        embedded=args.embedded,
        data_dir=args.data_dir,
    )
    listen = Listen(args.host, args.port, args.path)
    try:
        run(target, cast(Transport, args.transport), listen, cast(LogLevel, args.log_level))
    except ImportError as exc:  # --embedded on the client install: the SDK says what to add
        raise SystemExit(str(exc)) from exc


if __name__ == "__main__":
    main()
