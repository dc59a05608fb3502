"""docs/cli.md and the command line agree: every command has a section, the exit codes are
the ones documented, the variables read are settings or the clients' own, and every
``bash`` block runs, in order, in one shell against a real server on a loopback port."""

from __future__ import annotations

import importlib
import os
import re
import stat
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import typer

from tests.cli.conftest import ADMIN_KEY, API_KEY, JWT_SECRET, subprocess_env
from ww.cli import Exit, app, main
from ww.config import CLIENT_ENV_NAMES, Settings

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "cli.md"
_BASH = re.compile(r"^```bash\n(.*?)^```", re.S | re.M)
_EXIT_ROW = re.compile(r"^\| `(\d+)` \|", re.M)


def commands(group: Any, prefix: str = "ww") -> dict[str, Any]:
    """Every command a user can run, by its full name (``ww episodes list``); a group is
    what has commands of its own."""
    found: dict[str, Any] = {}
    for name, command in group.commands.items():
        path = f"{prefix} {name}"
        if hasattr(command, "commands"):
            found.update(commands(command, path))
        else:
            found[path] = command
    return found


def tree() -> dict[str, Any]:
    return commands(typer.main.get_command(app))


def headings() -> str:
    return "\n".join(line for line in DOC.read_text().splitlines() if line.startswith("### "))


def test_the_walk_finds_nested_commands() -> None:
    names = tree()
    assert {"ww store", "ww episodes list", "ww flags set", "ww token create"} <= set(names)


def test_every_command_has_a_section() -> None:
    documented = headings()
    missing = [name for name in tree() if f"`{name}`" not in documented]
    assert missing == [], "commands without a section in docs/cli.md"


def test_the_exit_codes_are_the_documented_ones() -> None:
    assert sorted(int(code) for code in _EXIT_ROW.findall(DOC.read_text())) == sorted(Exit)


def test_every_variable_the_cli_reads_is_a_setting_or_a_client_variable() -> None:
    root = typer.main.get_command(app)
    envvars = {
        name
        for command in [root, *tree().values()]
        for param in command.params
        for name in ([param.envvar] if isinstance(param.envvar, str) else param.envvar or [])
    }
    settings = {f"WW_{name.upper()}" for name in Settings.model_fields}
    assert envvars, "the global options read WW_* variables"
    assert sorted(envvars - settings - set(CLIENT_ENV_NAMES)) == []
    assert set(CLIENT_ENV_NAMES) <= envvars  # each client variable is read by the client


def test_the_ww_script_is_this_command_line_in_the_base_install() -> None:
    """`pip install world-weaver` without extras has the command: its script is
    ``ww.cli:main`` and typer and rich are base dependencies."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    module, _, name = project["scripts"]["ww"].partition(":")
    assert getattr(importlib.import_module(module), name) is main
    base = {re.split(r"[<>=!~\[ ]", spec)[0] for spec in project["dependencies"]}
    assert {"typer", "rich"} <= base


def test_importing_ww_loads_no_command_line_and_the_command_line_no_server() -> None:
    code = (
        "import sys\n"
        "import ww\n"
        "assert 'ww.cli' not in sys.modules and 'typer' not in sys.modules\n"
        "import ww.cli\n"
        "heavy = ('fastapi', 'uvicorn', 'onnxruntime', 'qdrant_edge', 'ww.api', 'ww.engine')\n"
        "print(' '.join(m for m in heavy if m in sys.modules))\n"
    )
    run = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
        env=subprocess_env(),
    )
    assert run.stdout.strip() == ""


def test_bash_examples_run(server: str, tmp_path: Path) -> None:
    blocks = _BASH.findall(DOC.read_text())
    assert blocks, "docs/cli.md has no bash examples"
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    ww = bin_dir / "ww"
    ww.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m ww.cli "$@"\n')
    ww.chmod(ww.stat().st_mode | stat.S_IXUSR)
    env = {
        **subprocess_env(),
        "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        "WW_API_URL": server,
        "WW_API_KEY": API_KEY,
        "WW_ADMIN_KEY": ADMIN_KEY,
        "WW_JWT_SECRET": JWT_SECRET,
        "COLUMNS": "200",
    }
    script = "set -euo pipefail\n" + "\n".join(blocks)
    run = subprocess.run(
        ["bash", "-c", script],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, f"docs/cli.md examples failed:\n{run.stdout}\n{run.stderr}"
