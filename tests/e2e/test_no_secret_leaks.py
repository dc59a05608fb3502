"""No secret appears in what the real server logs or answers.

Distinctive secrets are planted through the file and env backends (``chained``); the server
runs as a subprocess, answers successful and failing requests, and is stopped; then its log,
every response's headers and body, and the output of refused start-ups are scanned.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import Server, server_cmd, server_env
from ww.secrets import SECRET_FIELDS

FROM_FILES = ("neo4j_password", "jwt_secret", "admin_key")
FROM_ENV = ("qdrant_api_key", "api_key", "api_keys", "redis_url")
# Distinctive values, each long enough to pass the production length checks.
PLANTED = {f: f"Pl4nted{f.replace('_', '')}Zx9q8w7e6r5t4y3u2i1o" for f in SECRET_FIELDS}
# Memory content, which no log line may hold either.
MEMORY = "the Pl4ntedMemory of a heron at the mill pond"


def _value(field: str) -> str:
    """The setting's value: WW_API_KEYS is a JSON list that holds its planted key,
    WW_REDIS_URL a URL that holds it as the password."""
    if field == "api_keys":
        return json.dumps([{"id": "planted", "key": PLANTED[field]}])
    if field == "redis_url":
        # As Redis's password, of a Redis nobody serves: the limiter logs its outage.
        return f"redis://:{PLANTED[field]}@127.0.0.1:1/0"
    return PLANTED[field]


def _secrets_env(tmp_path: Path, files: tuple[str, ...] = FROM_FILES) -> dict[str, str]:
    secrets_dir = tmp_path / "secrets"
    secrets_dir.mkdir(exist_ok=True)
    for old in secrets_dir.iterdir():
        old.unlink()
    for field in files:
        (secrets_dir / field).write_text(_value(field) + "\n")
    env = {f"WW_{f.upper()}": _value(f) for f in FROM_ENV}
    return {**env, "WW_SECRETS_BACKEND": "chained", "WW_SECRETS_DIR": str(secrets_dir)}


def _leaks(text: str) -> list[str]:
    return [field for field, value in PLANTED.items() if value in text]


def _exchange(client: httpx.Client) -> list[str]:
    """Requests of every kind; each answer's status line, headers and body as text."""
    seen: list[httpx.Response] = []
    spec = client.get("/openapi.json")
    seen.append(spec)
    paths: dict[str, Any] = spec.json()["paths"]
    for path, ops in paths.items():
        if "get" in ops and "{" not in path:
            seen.append(client.get(path))
    key = {"X-API-Key": PLANTED["api_key"]}
    admin = {"X-Admin-Key": PLANTED["admin_key"]}
    seen += [
        # The control plane's answers (circuits: names, states and times only).
        client.get("/api/v1/control/circuits", headers=admin),
        client.post(
            "/api/v1/control/circuits/database", content='{"action": "reset"}', headers=admin
        ),
        client.post("/api/v1/control/circuits/database", content="{", headers=admin),
        # The JWT secret sent as if it were a token, and the key list's key: 401 and 201.
        client.get(
            "/api/v1/episodes", headers={"Authorization": f"Bearer {PLANTED['jwt_secret']}"}
        ),
        client.post(
            "/api/v1/episodes", json={"content": "b"}, headers={"X-API-Key": PLANTED["api_keys"]}
        ),
        client.post("/api/v1/episodes", json={"content": MEMORY}, headers=key),
        client.post("/api/v1/recall", json={"query": MEMORY}, headers=key),
        client.get("/api/v1/nowhere", headers=key),
        client.post("/api/v1/episodes", json={"content": 5}, headers=key),
        client.post("/api/v1/episodes", content=b"{" * 20_000_000, headers=key),
        client.get("/api/v1/episodes", headers={**key, "X-Session-ID": "bad session!"}),
    ]
    # The control plane: its answers, the audit (which names callers) and a blocked write.
    admin = {"X-Admin-Key": PLANTED["admin_key"]}
    seen += [
        client.patch("/api/v1/control/flags/telemetry", json={"enabled": True}, headers=admin),
        client.post(
            "/api/v1/control/emergency/panic",
            json={"level": "LIMITED", "reason": "leak check"},
            headers=admin,
        ),
        client.post("/api/v1/episodes", json={"content": "blocked"}, headers=key),
        client.get("/api/v1/health"),
        client.get("/api/v1/control/flags", headers=admin),
        client.get("/api/v1/control/flags/telemetry", headers=admin),
        client.get("/api/v1/control/emergency", headers=admin),
        client.get("/api/v1/control/audit", headers=admin),
        client.post("/api/v1/control/emergency/recover", json={"level": "NONE"}, headers=admin),
        client.patch("/api/v1/control/flags/nope", json={"enabled": True}, headers=admin),
    ]
    assert {r.status_code for r in seen} >= {200, 201, 401, 404, 413, 422, 503}
    return [f"{r.status_code} {r.headers!r} {r.text}" for r in seen]


def _json_lines(log: str) -> list[dict[str, Any]]:
    """Every line of a ``WW_LOG_FORMAT=json`` log, each one JSON object."""
    lines = [json.loads(line) for line in log.splitlines() if line.strip()]
    assert all(
        isinstance(line, dict) and {"time", "level", "message"} <= set(line) for line in lines
    )
    return lines


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_planted_secrets_never_leave_the_server(tmp_path: Path, log_format: str) -> None:
    server = Server(tmp_path / "data", tmp_path / "server.log")
    env = _secrets_env(tmp_path)
    # A setting no one reads, so the log has warnings to scan as well.
    server.start(
        **env, WW_API_PROT="9000", WW_RATE_LIMITER_BACKEND="redis", WW_LOG_FORMAT=log_format
    )
    try:
        server.wait_ready()
        with httpx.Client(base_url=server.url, timeout=30.0) as client:
            answers = _exchange(client)
    finally:
        server.stop()
    log = server.log()
    assert "WW_API_PROT" in log  # the warning was written where we look
    assert "Redis at redis://127.0.0.1:1 cannot be reached" in log  # and the outage's
    assert _leaks(log) == []
    assert "Pl4ntedMemory" not in log
    assert [a[:200] for a in answers if _leaks(a)] == []
    if log_format == "json":
        access = [line for line in _json_lines(log) if line["logger"] == "ww.access"]
        # One line per request, with its route's template, never its raw path.
        made = [a for a in access if a["method"] == "POST" and a["status"] == 201]
        assert made and made[0]["route"] == "/api/v1/episodes"
        # The caller named by its key's id, never by the key.
        assert {a["principal"] for a in made} == {"planted", "WW_API_KEY"}
        assert all(a["request_id"] for a in access)
        assert all(isinstance(a["duration_ms"], float) for a in access)
        assert {a["status"] for a in access} >= {200, 201, 401, 404, 413, 422, 503}


def _refused(tmp_path: Path, files: tuple[str, ...] = FROM_FILES, **extra: str) -> str:
    env = server_env(tmp_path / "data", 1, **_secrets_env(tmp_path, files), **extra)
    done = subprocess.run(
        server_cmd(), env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2, done.stderr[-2000:]
    return done.stdout + done.stderr


def test_refused_start_ups_name_the_variables_not_the_values(tmp_path: Path) -> None:
    bad_port = _refused(tmp_path, WW_API_PORT="not-a-port")
    assert "WW_API_PORT" in bad_port
    assert _leaks(bad_port) == []
    # Production with a short key and a wildcard origin: refused, the key named, not quoted.
    short = "Sh0rtPl4nt"
    prod = _refused(
        tmp_path, WW_ENVIRONMENT="production", WW_ADMIN_KEY=short, WW_API_CORS_ORIGINS="*"
    )
    assert "WW_API_CORS_ORIGINS" in prod
    assert _leaks(prod) == []
    # The file backend's admin_key wins in chained mode: without the file, the env one counts.
    prod = _refused(
        tmp_path, ("neo4j_password", "jwt_secret"), WW_ENVIRONMENT="production", WW_ADMIN_KEY=short
    )
    assert "WW_ADMIN_KEY is shorter than 16" in prod
    assert short not in prod and _leaks(prod) == []
