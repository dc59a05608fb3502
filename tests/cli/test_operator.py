"""The operator's commands: export and import, sessions, status, tokens, and the exit codes
of failures scripts must tell apart."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.cli.conftest import ADMIN_KEY, JWT_SECRET, SESSION, Ww, subprocess_env
from ww.cli import app


def test_export_then_import_round_trip(ww: Ww, tmp_path: Path) -> None:
    stored = ww.json("store", "exported memories come back")
    backup = tmp_path / "backup.jsonl"
    report = ww.json("export", str(backup))
    assert report["bytes"] == backup.stat().st_size > 0
    assert report["counts"]["episode"] == 1
    assert not backup.with_name("backup.jsonl.partial").exists()
    ww("sessions", "delete", SESSION)
    ww("episodes", "get", stored["id"], code=3)
    imported = ww.json("import", str(backup))
    assert imported["counts"]["episode"] == 1
    assert ww.json("episodes", "get", stored["id"])["content"] == stored["content"]


def test_progress_goes_to_stderr_and_stdout_stays_json(admin: Ww, tmp_path: Path) -> None:
    admin("store", "a memory to export")
    backup = tmp_path / "backup.jsonl"
    exported = admin("export", str(backup), "--only-session", SESSION, "--json")
    assert json.loads(exported.stdout)["file"] == str(backup)
    assert "export" in exported.stderr and "B" in exported.stderr  # a size, in bytes
    imported = admin("import", str(backup), "--json")
    assert json.loads(imported.stdout)["counts"]["episode"] == 1
    assert "import" in imported.stderr


def test_an_export_that_fails_leaves_no_file(admin: Ww, tmp_path: Path) -> None:
    target = tmp_path / "none.jsonl"
    result = admin("export", str(target), "--only-session", "no-such-session", code=3)
    assert "404" in result.stderr
    assert list(tmp_path.glob("none.jsonl*")) == []


def test_sessions_list_and_delete(admin: Ww) -> None:
    admin("store", "one")
    admin.but("--session", "other")("store", "two")
    listed = {s["session_id"]: s["episodes"] for s in admin.json("sessions", "list", "--all")}
    assert listed == {SESSION: 1, "other": 1}
    assert admin.json("sessions", "delete", "other")["deleted_episodes"] == 1
    admin("sessions", "delete", "other", code=3)


def test_status_shows_the_control_plane_to_an_admin_only(remote: Ww) -> None:
    remote("store", "counted")
    user = remote.json("status")
    assert user["health"]["status"] == "ok" and user["counts"]["episodes"] == 1
    # To a user key the control plane's routes answer 403: left out, not an error.
    assert set(user) == {"health", "counts"}
    admin = remote.but("--admin-key", ADMIN_KEY).json("status")
    assert set(admin) == {"health", "counts", "flags", "emergency", "circuits"}
    assert admin["emergency"]["level"] == "NONE"
    assert {c["state"] for c in admin["circuits"]["circuits"]} == {"closed"}
    assert "episodes" in remote("status").stdout


def test_flags_set_changes_the_running_server(remote: Ww) -> None:
    admin = remote.but("--admin-key", ADMIN_KEY)
    changed = admin.json("flags", "set", "telemetry", "--on")
    assert changed["flag"]["enabled"] is True and changed["previous"] is False
    listed = {f["name"]: f for f in admin.json("flags", "list")["flags"]}
    assert listed["telemetry"]["enabled"] is True and listed["telemetry"]["source"] == "runtime"
    admin.json("flags", "set", "telemetry", "--off")
    assert {f["name"]: f["enabled"] for f in admin.json("flags", "list")["flags"]}[
        "telemetry"
    ] is False
    remote("flags", "set", "telemetry", "--on", code=4)  # a user key may not
    admin("flags", "set", "no_such_flag", "--on", code=3)


def test_a_user_key_on_an_admin_command_exits_4(remote: Ww) -> None:
    result = remote("sessions", "list", code=4)
    assert "403" in result.stderr and "request id" in result.stderr


def test_a_wrong_key_exits_4(server: str) -> None:
    result = Ww("--url", server, "--api-key", "not-the-key-0123456789")("store", "x", code=4)
    assert "401" in result.stderr and result.stdout == ""


def _closed_port() -> int:
    """A loopback port nothing listens on: bound, then released."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def test_a_server_that_is_down_exits_5() -> None:
    down = Ww("--url", f"http://127.0.0.1:{_closed_port()}", "--timeout", "2")
    result = down("status", code=5)
    assert "no answer from http://127.0.0.1:" in result.stderr and result.stdout == ""
    # A streamed export gets the same code, and leaves no file behind.
    down("export", "backup.jsonl", code=5)
    assert list(Path.cwd().glob("backup.jsonl*")) == []


@pytest.mark.slow
def _sigint_as_in_a_terminal() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_serve_runs_a_server_that_status_finds(tmp_path: Path) -> None:
    port = _closed_port()
    command = [sys.executable, "-m", "ww.cli", "serve", "--port", str(port)]
    served = subprocess.Popen(
        [*command, "--data-dir", str(tmp_path / "served")],
        env=subprocess_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        # As from a terminal: a suite started in the background of a script inherits
        # SIGINT ignored, and the server rightly keeps an ignored Ctrl-C ignored.
        preexec_fn=_sigint_as_in_a_terminal,
    )
    probe = Ww("--url", f"http://127.0.0.1:{port}", "--timeout", "2")
    try:
        for _ in range(600):  # the server loads its model first
            result = probe.runner.invoke(app, [*probe.options, "status", "--json"])
            if result.exit_code == 0 or served.poll() is not None:
                break
            time.sleep(0.2)
        assert result.exit_code == 0, result.stderr
        assert json.loads(result.stdout)["health"]["status"] == "ok"
    finally:
        served.send_signal(signal.SIGINT)
        _, errors = served.communicate(timeout=60)
    # Ctrl-C: the server shuts down cleanly, then exits as an interrupted command does.
    assert b"Application shutdown complete" in errors
    assert served.returncode == 128 + signal.SIGINT, errors


def test_token_create_mints_a_jwt_the_server_accepts_as_admin(
    server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WW_JWT_SECRET", JWT_SECRET)
    token = Ww()("token", "create", "--sub", "ops", "--ttl", "60").stdout.strip()
    assert token.count(".") == 2
    as_admin = Ww("--url", server, "--token", token)
    assert isinstance(as_admin.json("sessions", "list"), list)
    user = Ww()("token", "create", "--role", "user", "--json").stdout
    Ww("--url", server, "--token", json.loads(user)["token"])("sessions", "list", code=4)


def test_token_create_without_a_secret_is_a_usage_error() -> None:
    result = Ww()("token", "create", code=2)
    assert "WW_JWT_SECRET" in result.stderr
