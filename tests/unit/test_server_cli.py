"""The server's command line and its start-up refusals, run for real (subprocesses on
loopback; a missing extra is a real interpreter whose import of the package fails)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import httpx
import pytest

from tests.e2e.conftest import HOST, free_port, server_env
from ww.api.server import main, settings_from_args
from ww.config import ConfigError

ROOT = Path(__file__).resolve().parents[2]
SERVER = [sys.executable, "-m", "ww.api.server"]
# What the `ww-server` console script runs (pyproject's [project.scripts]).
SCRIPT = [sys.executable, "-c", "import sys; from ww.api.server import main; sys.exit(main())"]


def run(cmd: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        cmd, env=env, cwd=cwd, capture_output=True, text=True, timeout=120, check=False
    )


def test_console_script_is_main() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert project["project"]["scripts"]["ww-server"] == "ww.api.server:main"


@pytest.mark.parametrize("cmd", [SERVER, SCRIPT], ids=["module", "console-script"])
def test_help_prints_help_and_starts_nothing(cmd: list[str], tmp_path: Path) -> None:
    port = free_port()
    data = tmp_path / "data"
    done = run([*cmd, "--help"], server_env(data, port), tmp_path)
    assert done.returncode == 0, done.stderr
    for option in ("--host", "--port", "--data-dir", "--workers"):
        assert option in done.stdout
    for variable in ("WW_API_HOST", "WW_API_PORT", "WW_DATA_DIR", "WW_API_WORKERS"):
        assert variable in done.stdout
    assert not data.exists()  # no engine was built, no store opened


def test_options_override_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text("WW_API_PORT=9002\n")
    for k, v in {
        "WW_API_HOST": "127.0.0.9",
        "WW_DATA_DIR": str(tmp_path / "from-env"),
        "WW_API_WORKERS": "1",
    }.items():
        monkeypatch.setenv(k, v)
    assert (settings_from_args([]).api_host, settings_from_args([]).api_port) == (
        "127.0.0.9",
        9002,
    )
    s = settings_from_args(
        ["--host", "127.0.0.2", "--port", "9100", "--data-dir", str(tmp_path / "cli")]
    )
    assert (s.api_host, s.api_port, s.data_dir) == ("127.0.0.2", 9100, tmp_path / "cli")
    # An option is checked like its variable, and the message names the variable.
    with pytest.raises(ConfigError, match="WW_API_PORT=70000"):
        settings_from_args(["--port", "70000"])


def test_workers_option_is_checked_before_anything_starts(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("WW_DATA_DIR", str(tmp_path / "data"))
    assert main(["--workers", "3"]) == 2
    assert "WW_API_WORKERS=3" in capsys.readouterr().err
    assert not (tmp_path / "data").exists()


def test_server_listens_where_the_options_say(tmp_path: Path) -> None:
    env_port, cli_port = free_port(), free_port()
    env = server_env(tmp_path / "env-data", env_port)
    log = (tmp_path / "server.log").open("wb")
    proc = subprocess.Popen(
        [*SERVER, "--port", str(cli_port), "--data-dir", str(tmp_path / "cli-data")],
        env=env,
        cwd=tmp_path,
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 90
        healthy = False
        while time.monotonic() < deadline and proc.poll() is None and not healthy:
            try:
                healthy = httpx.get(f"http://{HOST}:{cli_port}/api/v1/health").status_code == 200
            except httpx.TransportError:
                time.sleep(0.2)
        assert healthy, (tmp_path / "server.log").read_text()
        with pytest.raises(httpx.TransportError):
            httpx.get(f"http://{HOST}:{env_port}/api/v1/health")
        assert (tmp_path / "cli-data" / "ww.sqlite3").exists()
        assert not (tmp_path / "env-data").exists()
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()


# -- a setting whose extra is not installed ---------------------------------------------------


def _without(tmp_path: Path, *modules: str) -> dict[str, str]:
    """An environment whose interpreter cannot import ``modules`` (a stand-in that raises
    ImportError comes first on PYTHONPATH), with no WW_* variable."""
    blocked = tmp_path / "blocked"
    blocked.mkdir()
    for module in modules:
        (blocked / f"{module}.py").write_text(f"raise ImportError('{module} is not installed')\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("WW_")}
    env["PYTHONPATH"] = os.pathsep.join(
        [str(blocked), str(ROOT / "src"), *filter(None, [env.get("PYTHONPATH")])]
    )
    return env


def _one_line(done: subprocess.CompletedProcess[str]) -> str:
    # The production checklist's findings are warnings outside production; not the error.
    lines = [
        line
        for line in done.stderr.splitlines()
        if line.strip() and "WW_ENVIRONMENT=production would refuse this" not in line
    ]
    assert done.returncode == 2, done.stderr
    assert len(lines) == 1, done.stderr
    return lines[0]


def test_readme_docker_env_then_make_run_names_the_extra(tmp_path: Path) -> None:
    # The README's Docker step, then `make run` on an install without the server extra.
    shutil.copy(ROOT / ".env.example", tmp_path / ".env")
    env = _without(tmp_path, "neo4j", "qdrant_client")
    env["WW_DATA_DIR"] = str(tmp_path / "data")
    line = _one_line(run(SERVER, env, tmp_path))
    assert line == (
        "world-weaver: WW_NEO4J_URI and WW_QDRANT_URL need the server extra "
        '(neo4j, qdrant-client not installed): pip install -e ".[api,server]"'
    )


def test_neo4j_vectors_need_only_the_driver(tmp_path: Path) -> None:
    env = _without(tmp_path, "neo4j")
    env.update(
        WW_DATA_DIR=str(tmp_path / "data"),
        WW_NEO4J_URI="bolt://127.0.0.1:7687",
        WW_VECTOR_BACKEND="neo4j",
    )
    line = _one_line(run(SERVER, env, tmp_path))
    assert line.endswith(
        'WW_NEO4J_URI needs the server extra (neo4j not installed): pip install -e ".[api,server]"'
    )


def test_hub_model_without_the_hub_extra(tmp_path: Path) -> None:
    env = _without(tmp_path, "huggingface_hub")
    env.update(
        WW_DATA_DIR=str(tmp_path / "data"),
        WW_EMBEDDING_MODEL="BAAI/bge-m3",
        WW_EMBEDDING_DIMENSION="1024",
    )
    line = _one_line(run(SERVER, env, tmp_path))
    assert line.startswith("world-weaver: WW_EMBEDDING_MODEL='BAAI/bge-m3'")
    assert 'pip install -e ".[api,hub]"' in line


def test_production_refusal_is_printed_and_exits_non_zero(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("WW_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("WW_ENVIRONMENT", "production")
    monkeypatch.setenv("WW_API_PROT", "9000")
    assert main([]) == 2
    err = capsys.readouterr().err
    assert err.startswith("world-weaver: refusing to start with WW_ENVIRONMENT=production")
    assert "WW_API_PROT" in err and "did you mean WW_API_PORT?" in err
    assert not (tmp_path / "data").exists()


def test_a_bad_key_list_is_printed_before_anything_loads(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("WW_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("WW_API_KEYS", '[{"id": "a", "key": "ww_secret-key-0123456789", "x": 1}]')
    assert main([]) == 2
    err = capsys.readouterr().err
    assert err.startswith("world-weaver: WW_API_KEYS is not a valid key list")
    assert "ww_secret-key" not in err
    assert not (tmp_path / "data").exists()
