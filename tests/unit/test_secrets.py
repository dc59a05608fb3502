"""``WW_SECRETS_BACKEND``: each backend reads secrets from real files and variables."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from ww.config import ConfigError, SecretsBackend, load_settings
from ww.secrets import SECRET_FIELDS, read_secret_files, resolve_backend

ENV_PW = "env-password-0123456789"
FILE_PW = "file-password-0123456789"


@pytest.fixture
def secrets_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    monkeypatch.chdir(tmp_path)  # no stray .env
    d = tmp_path / "secrets"
    d.mkdir()
    (d / "neo4j_password").write_text(FILE_PW + "\n")
    monkeypatch.setenv("WW_SECRETS_DIR", str(d))
    return d


def _pw(**overrides: object) -> str | None:
    value = load_settings(**overrides).neo4j_password
    return None if value is None else value.get_secret_value()


def test_env_backend_ignores_the_files(monkeypatch: pytest.MonkeyPatch, secrets_dir: Path) -> None:
    monkeypatch.setenv("WW_SECRETS_BACKEND", "env")
    assert _pw() is None
    monkeypatch.setenv("WW_NEO4J_PASSWORD", ENV_PW)
    assert _pw() == ENV_PW


def test_file_backend_reads_files_only(
    monkeypatch: pytest.MonkeyPatch, secrets_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("WW_SECRETS_BACKEND", "file")
    monkeypatch.setenv("WW_NEO4J_PASSWORD", ENV_PW)
    monkeypatch.setenv("WW_QDRANT_API_KEY", "env-qdrant-key-0123456789")
    with caplog.at_level(logging.WARNING, logger="ww.secrets"):
        s = load_settings()
    assert s.neo4j_password is not None and s.neo4j_password.get_secret_value() == FILE_PW
    # No file for it: the variable is ignored, and the log says so without the value.
    assert s.qdrant_api_key is None
    logged = " ".join(r.getMessage() for r in caplog.records)
    assert "WW_QDRANT_API_KEY is set in the environment" in logged
    assert "env-qdrant-key" not in logged


def test_chained_backend_prefers_the_file_then_the_variable(
    monkeypatch: pytest.MonkeyPatch, secrets_dir: Path
) -> None:
    monkeypatch.setenv("WW_SECRETS_BACKEND", "chained")
    monkeypatch.setenv("WW_NEO4J_PASSWORD", ENV_PW)
    monkeypatch.setenv("WW_QDRANT_API_KEY", "env-qdrant-key-0123456789")
    s = load_settings()
    assert s.neo4j_password is not None and s.neo4j_password.get_secret_value() == FILE_PW
    assert s.qdrant_api_key is not None
    assert s.qdrant_api_key.get_secret_value() == "env-qdrant-key-0123456789"


def test_auto_is_file_where_the_directory_exists_else_env(
    monkeypatch: pytest.MonkeyPatch, secrets_dir: Path
) -> None:
    monkeypatch.setenv("WW_NEO4J_PASSWORD", ENV_PW)
    assert resolve_backend(SecretsBackend.AUTO, secrets_dir) is SecretsBackend.FILE
    assert _pw() == FILE_PW
    missing = secrets_dir.parent / "absent"
    monkeypatch.setenv("WW_SECRETS_DIR", str(missing))
    assert resolve_backend(SecretsBackend.AUTO, missing) is SecretsBackend.ENV
    assert _pw() == ENV_PW


def test_backend_and_directory_may_come_from_dotenv_or_arguments(
    monkeypatch: pytest.MonkeyPatch, secrets_dir: Path, tmp_path: Path
) -> None:
    monkeypatch.delenv("WW_SECRETS_DIR")
    (tmp_path / ".env").write_text(
        f"WW_SECRETS_BACKEND=file\nWW_SECRETS_DIR={secrets_dir}\nWW_NEO4J_PASSWORD={ENV_PW}\n"
    )
    assert _pw() == FILE_PW
    assert _pw(secrets_backend="env") == ENV_PW
    # An argument is the caller's own value and wins over every backend.
    assert _pw(neo4j_password="argument-password-0123") == "argument-password-0123"


def test_file_names_newlines_and_every_secret_field(tmp_path: Path) -> None:
    (tmp_path / "WW_API_KEY").write_text("upper-case-name\r\n")
    (tmp_path / "jwt_secret").write_text("two lines\nkept\n\n")
    (tmp_path / "admin_key").write_text("no-newline")
    (tmp_path / "api_keys").mkdir()  # not a file: ignored
    got = read_secret_files(tmp_path)
    assert got == {
        "api_key": "upper-case-name",
        "jwt_secret": "two lines\nkept\n",  # only the one trailing newline goes
        "admin_key": "no-newline",
    }
    (tmp_path / "api_key").write_text("lower-case-name")
    assert read_secret_files(tmp_path)["api_key"] == "lower-case-name"  # Docker's name first
    assert set(SECRET_FIELDS) >= set(got)


def test_unreadable_secret_file_names_the_path_not_the_content(
    monkeypatch: pytest.MonkeyPatch, secrets_dir: Path
) -> None:
    (secrets_dir / "api_key").write_bytes(b"\xff\xfenot-utf8-secret")
    monkeypatch.setenv("WW_SECRETS_BACKEND", "file")
    with pytest.raises(ConfigError) as info:
        load_settings()
    assert str(secrets_dir / "api_key") in str(info.value)
    assert "not-utf8-secret" not in str(info.value)


def test_invalid_backend_is_named(monkeypatch: pytest.MonkeyPatch, secrets_dir: Path) -> None:
    monkeypatch.setenv("WW_SECRETS_BACKEND", "vault")
    with pytest.raises(ConfigError, match="WW_SECRETS_BACKEND='vault'"):
        load_settings()


def test_secrets_stay_out_of_repr_str_dumps_and_errors(
    monkeypatch: pytest.MonkeyPatch, secrets_dir: Path
) -> None:
    planted = {f: f"PLANTED-{f}-0123456789abcdef0123" for f in SECRET_FIELDS}
    # A URL whose password is the secret part.
    planted["redis_url"] = "redis://:PLANTED-redis-password-0123@127.0.0.1:6379/0"
    for f, v in planted.items():
        (secrets_dir / f).write_text(v)
    s = load_settings()
    assert s.jwt_secret is not None and s.jwt_secret.get_secret_value() == planted["jwt_secret"]
    shown = repr(s) + str(s) + s.model_dump_json() + str(s.model_dump())
    assert not [v for v in planted.values() if v in shown]
    assert "PLANTED-redis-password" not in shown
    # An invalid value elsewhere: the message lists errors, never a secret.
    monkeypatch.setenv("WW_API_PORT", "not-a-port")
    with pytest.raises(ConfigError) as info:
        load_settings()
    assert not [v for v in planted.values() if v in str(info.value)]


def test_an_invalid_secret_is_named_without_its_value(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError) as info:
        load_settings(api_key=98765432109876543210)  # not a string
    assert "WW_API_KEY=<hidden>" in str(info.value)
    assert "98765432109876543210" not in str(info.value)
