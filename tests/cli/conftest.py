"""The command line against a real server on a loopback port (``tests/sdk/server.py``) and
against ``--embedded`` on a temporary data directory, through typer's ``CliRunner``."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr
from typer.testing import CliRunner, Result

from tests.sdk.server import make_app, serve
from ww.cli import app
from ww.config import Settings
from ww.embedding import EmbeddingService

API_KEY = "cli-test-user-key-0123456789"
ADMIN_KEY = "cli-test-admin-key-0123456789"
JWT_SECRET = "cli-test-jwt-secret-0123456789-0123456789"
SESSION = "cli-tests"
SRC = Path(__file__).resolve().parents[2] / "src"


def subprocess_env() -> dict[str, str]:
    """This environment with this checkout's ``src`` first on the path, whatever the
    working directory (the tests run from a temporary one)."""
    paths = (str(SRC), os.environ.get("PYTHONPATH"))
    return {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in paths if p)}


class Ww:
    """``ww`` with the global options of one connection before every command."""

    def __init__(self, *options: str) -> None:
        self.options = list(options)
        self.runner = CliRunner()

    def __call__(self, *args: str, code: int = 0, stdin: str | None = None) -> Result:
        result = self.runner.invoke(
            app, [*self.options, *args], input=stdin, catch_exceptions=False
        )
        assert result.exit_code == code, (result.exit_code, result.stdout, result.stderr)
        return result

    def json(self, *args: str) -> Any:
        """The answer of ``--json``: stdout is that JSON and nothing else."""
        return json.loads(self(*args, "--json").stdout)

    def but(self, *options: str) -> Ww:
        return Ww(*self.options, *options)


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No WW_* variable of the developer's shell reaches the command line or its engine."""
    for name in [n for n in os.environ if n.startswith("WW_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("WW_ENVIRONMENT", "test")
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def server(settings: Settings, embedding_service: EmbeddingService) -> Iterator[str]:
    """A server with authentication on: a user key, an admin key and a JWT secret."""
    app_ = make_app(
        settings,
        embedding_service,
        api_key=SecretStr(API_KEY),
        admin_key=SecretStr(ADMIN_KEY),
        jwt_secret=SecretStr(JWT_SECRET),
    )
    with serve(app_) as url:
        yield url


@pytest.fixture
def remote(server: str) -> Ww:
    return Ww("--url", server, "--api-key", API_KEY, "--session", SESSION)


@pytest.fixture
def admin(remote: Ww) -> Ww:
    return remote.but("--admin-key", ADMIN_KEY)


@pytest.fixture
def embedded(tmp_path: Path) -> Ww:
    return Ww("--embedded", "--data-dir", str(tmp_path / "data"), "--session", SESSION)


@pytest.fixture(params=["remote", "embedded"])
def ww(request: pytest.FixtureRequest) -> Ww:
    """Each test that takes ``ww`` runs against both (admin credentials on the server)."""
    name = "admin" if request.param == "remote" else "embedded"
    found: Ww = request.getfixturevalue(name)
    return found
