"""``ww``: World Weaver's command line (docs/cli.md), on the Python SDK: one client for a
server (``--url``) and for an engine in this process (``--embedded``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ww.cli import knowledge, memories, operator, transfer
from ww.cli._shared import ENV_URL, Connection, Exit
from ww.sdk import DEFAULT_URL

__all__ = ["ENV_URL", "Exit", "app", "main"]

app = typer.Typer(
    name="ww",
    help="World Weaver: long-term memory for AI agents, from the command line.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    rich_markup_mode=None,
)


@app.callback()
def connect(
    ctx: typer.Context,
    url: Annotated[
        str, typer.Option(envvar=ENV_URL, help="The server.", show_default=True)
    ] = DEFAULT_URL,
    api_key: Annotated[
        str | None, typer.Option(envvar="WW_API_KEY", help="A user key (X-API-Key).")
    ] = None,
    admin_key: Annotated[
        str | None, typer.Option(envvar="WW_ADMIN_KEY", help="The admin key (X-Admin-Key).")
    ] = None,
    token: Annotated[
        str | None, typer.Option(help="A JWT (Authorization: Bearer); see `ww token create`.")
    ] = None,
    session: Annotated[
        str | None,
        typer.Option(envvar="WW_SESSION_ID", help="The session to act in (X-Session-ID)."),
    ] = None,
    embedded: Annotated[
        bool, typer.Option("--embedded", help="Run the engine in this process, no server.")
    ] = False,
    data_dir: Annotated[
        Path | None,
        typer.Option(envvar="WW_DATA_DIR", help="The embedded engine's data directory."),
    ] = None,
    timeout: Annotated[float, typer.Option(min=0.1, help="Seconds per request.")] = 30.0,
) -> None:
    ctx.obj = Connection(url, api_key, admin_key, token, session, embedded, data_dir, timeout)


_groups = {kind.name: memories.kind_group(kind) for kind in memories.KINDS}
knowledge.add_entity_commands(_groups["entities"])
knowledge.add_skill_commands(_groups["skills"])
memories.register(app, _groups)
app.command("export")(transfer.export)
app.command("import")(transfer.import_)
app.command()(operator.status)
app.command()(operator.serve)
app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})(
    operator.mcp
)
app.add_typer(operator.sessions, name="sessions")
app.add_typer(operator.flags, name="flags")
app.add_typer(operator.token, name="token")


def main() -> None:
    app(prog_name="ww")
