"""argon2-stored keys and the keys file read again when it changes (ww.api.keys, ww.api.auth).

The argon2 checks are real (argon2-cffi, in the dev extra); the keys file is a real file
rewritten between requests, and the clock that paces the file checks is a manual one.
"""

from __future__ import annotations

import io
import json
import logging
import subprocess
import sys
from pathlib import Path

import argon2
import pytest

import ww
import ww.api.keys as keys_module
from ww.api.auth import KEYS_FILE_CHECK_S, Authenticator
from ww.api.keys import (
    ARGON2_PREFIX_CHARS,
    KeyTable,
    Principal,
    Role,
    argon2_entry,
    hash_key,
    parse_specs,
)
from ww.api.token import main
from ww.config import ConfigError, Settings

KEY_A = "ww_Arotation-key-0123456789abcdefghij"
KEY_B = "ww_Brotation-key-9876543210zyxwvutsrq"


def _settings(**kw: object) -> Settings:
    return Settings(_env_file=None, environment="test", **kw)  # type: ignore[arg-type]


def _table(*entries: dict[str, object]) -> KeyTable:
    return KeyTable(parse_specs(json.dumps(list(entries)), "test"))


def test_an_argon2_entry_takes_its_key_and_no_other() -> None:
    table = _table({"id": "agent", **argon2_entry(KEY_A), "sessions": ["s1"]})
    agent = Principal("agent", Role.USER, frozenset({"s1"}))
    same_prefix = KEY_A[:ARGON2_PREFIX_CHARS] + "x" * 30
    assert table.needs_argon2(same_prefix)
    assert table.find(same_prefix) is None
    assert table.find(KEY_A[:-1]) is None
    # A key with no entry's prefix is refused without any argon2 check.
    assert not table.needs_argon2(KEY_B)
    assert table.find(KEY_B) is None
    assert table.needs_argon2(KEY_A)
    assert table.find(KEY_A) == agent
    # Once checked, the key is found by its digest: no second argon2 check.
    assert not table.needs_argon2(KEY_A)
    assert table.find(KEY_A) == agent
    # A key that failed its check is refused again without one.
    assert not table.needs_argon2(same_prefix)
    assert table.find(same_prefix) is None


def test_argon2_and_sha256_entries_side_by_side() -> None:
    table = _table(
        {"id": "plain", "key_sha256": hash_key(KEY_B), "role": "admin"},
        {"id": "hashed", **argon2_entry(KEY_A)},
    )
    assert table.find(KEY_B) == Principal("plain", Role.ADMIN)
    assert table.find(KEY_A) == Principal("hashed", Role.USER)
    assert len(table) == 2


@pytest.mark.parametrize(
    ("entry", "complaint"),
    [
        ({"key_argon2": "$argon2id$v=19$m=65536,t=3,p=4$bad"}, "key_prefix"),
        ({"key_prefix": KEY_A[:ARGON2_PREFIX_CHARS]}, "exactly one"),
        (
            {"key_argon2": "$argon2i$v=19$m=8,t=1,p=1$c2FsdHNhbHQ$aGFzaA", "key_prefix": "x" * 12},
            "argon2id",
        ),
    ],
)
def test_bad_argon2_entries_are_refused(entry: dict[str, str], complaint: str) -> None:
    with pytest.raises(ConfigError, match=complaint):
        _table({"id": "a", **entry})


def test_a_malformed_argon2_hash_stops_start_up() -> None:
    with pytest.raises(ConfigError, match="not a valid argon2id hash"):
        _table({"id": "a", "key_prefix": "x" * 12, "key_argon2": "$argon2id$v=19$nonsense"})


def test_token_tool_hashes_with_argon2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(KEY_A + "\n"))
    assert main(["hash-key", "--argon2"]) == 0
    entry = json.loads(capsys.readouterr().out)
    assert entry["key_prefix"] == KEY_A[:ARGON2_PREFIX_CHARS]
    assert entry["key_argon2"].startswith("$argon2id$")
    assert KEY_A not in entry["key_argon2"]
    assert _table({"id": "cli", **entry}).find(KEY_A) == Principal("cli", Role.USER)
    # Too short to keep a prefix in the clear.
    monkeypatch.setattr("sys.stdin", io.StringIO("ww_short-key-0123456\n"))
    assert main(["hash-key", "--argon2"]) == 2
    assert "at least 32 characters" in capsys.readouterr().err


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _write(path: Path, *entries: dict[str, object]) -> None:
    path.write_text(json.dumps(list(entries)))


def test_a_rewritten_keys_file_rotates_keys_without_a_restart(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "keys.json"
    _write(path, {"id": "agent", "key": KEY_A})
    clock = _Clock()
    auth = Authenticator(
        _settings(api_key="ww_fixed-env-key-0123456789", api_keys_file=path), clock
    )
    assert auth.resolve({"x-api-key": KEY_A})[0] == Principal("agent", Role.USER)

    _write(path, {"id": "agent", **argon2_entry(KEY_B)})
    # Looked at no more than once a KEYS_FILE_CHECK_S.
    assert auth.resolve({"x-api-key": KEY_A})[0] is not None
    clock.now += KEYS_FILE_CHECK_S
    assert auth.resolve({"x-api-key": KEY_A})[0] is None
    assert auth.resolve({"x-api-key": KEY_B})[0] == Principal("agent", Role.USER)
    # The keys from the environment are kept across reloads.
    assert auth.resolve({"x-api-key": "ww_fixed-env-key-0123456789"})[0] is not None

    caplog.set_level(logging.INFO, logger="ww.api.auth")
    for broken in (
        f'[{{"id": "agent", "key": "{KEY_A}"}}',  # cut short
        json.dumps([{"id": "WW_API_KEY", "key": KEY_A}]),  # an id the environment's key has
    ):
        path.write_text(broken)
        clock.now += KEYS_FILE_CHECK_S
        assert auth.resolve({"x-api-key": KEY_B})[0] == Principal("agent", Role.USER)
        assert auth.resolve({"x-api-key": KEY_A})[0] is None
    path.unlink()
    for _ in range(2):  # logged once, not at every look
        clock.now += KEYS_FILE_CHECK_S
        assert auth.resolve({"x-api-key": KEY_B})[0] is not None
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 3
    assert "not a valid key list" in errors[0] and "unique" in errors[1]
    assert "cannot read" in errors[2]
    assert not any(KEY_A in e or KEY_B in e for e in caplog.messages)

    _write(path, {"id": "agent-2", "key": KEY_A})
    clock.now += KEYS_FILE_CHECK_S
    assert auth.resolve({"x-api-key": KEY_A})[0] == Principal("agent-2", Role.USER)
    assert auth.resolve({"x-api-key": KEY_B})[0] is None


def test_an_empty_keys_file_refuses_every_key_rather_than_opening_up(tmp_path: Path) -> None:
    path = tmp_path / "keys.json"
    path.write_text("[]")
    auth = Authenticator(_settings(api_keys_file=path))
    assert auth.enabled
    assert auth.resolve({"x-api-key": KEY_A})[0] is None


def test_without_argon2_cffi_an_argon2_entry_stops_start_up_naming_the_extra(
    tmp_path: Path,
) -> None:
    """The real server started where argon2-cffi is truly absent: a copy of the environment's
    packages (as links) without it, and no site processing."""
    site_packages = Path(argon2.__file__).parents[1]
    packages = tmp_path / "site-packages"
    packages.mkdir()
    for entry in site_packages.iterdir():
        if not entry.name.lstrip("_").startswith("argon2") and entry.suffix != ".pth":
            (packages / entry.name).symlink_to(entry)
    src = Path(ww.__file__).parents[1]
    keys = json.dumps([{"id": "a", "key_prefix": "x" * 12, "key_argon2": "$argon2id$v=19$x"}])
    code = (
        f"import sys; sys.path[:0] = [{str(src)!r}, {str(packages)!r}]; "
        "import ww.api.server; sys.exit(ww.api.server.main([]))"
    )
    done = subprocess.run(
        [sys.executable, "-I", "-S", "-c", code],
        env={"WW_API_KEYS": keys, "WW_DATA_DIR": str(tmp_path / "data"), "PATH": "/usr/bin:/bin"},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2, done.stderr[-2000:]
    assert "argon2-cffi" in done.stderr and "world-weaver[argon2]" in done.stderr


class _CountingHasher(argon2.PasswordHasher):
    """The real hasher, counting its verifications."""

    verified = 0

    def verify(self, hash: str | bytes, password: str | bytes) -> bool:
        type(self).verified += 1
        return super().verify(hash, password)


@pytest.fixture
def counting_hasher(monkeypatch: pytest.MonkeyPatch) -> type[_CountingHasher]:
    monkeypatch.setattr(_CountingHasher, "verified", 0)
    monkeypatch.setattr(argon2, "PasswordHasher", _CountingHasher)
    return _CountingHasher


def test_a_wrong_key_with_a_known_prefix_costs_one_argon2_check_until_a_reload(
    tmp_path: Path, counting_hasher: type[_CountingHasher]
) -> None:
    path = tmp_path / "keys.json"
    _write(path, {"id": "agent", **argon2_entry(KEY_A)})
    clock = _Clock()
    auth = Authenticator(_settings(api_keys_file=path), clock)
    wrong = KEY_A[:ARGON2_PREFIX_CHARS] + "x" * 30
    for _ in range(3):
        assert auth.resolve({"x-api-key": wrong})[0] is None
    assert counting_hasher.verified == 1
    assert not auth._keys.needs_argon2(wrong)
    # The right key is still checked and found.
    assert auth.resolve({"x-api-key": KEY_A})[0] == Principal("agent", Role.USER)
    assert counting_hasher.verified == 2

    # A reload forgets the refused keys: the same wrong key is checked again.
    _write(path, {"id": "agent-2", **argon2_entry(KEY_A)})
    clock.now += KEYS_FILE_CHECK_S
    assert auth.resolve({"x-api-key": wrong})[0] is None
    assert counting_hasher.verified == 3
    assert auth.resolve({"x-api-key": wrong})[0] is None
    assert counting_hasher.verified == 3
    assert auth.resolve({"x-api-key": KEY_A})[0] == Principal("agent-2", Role.USER)


def test_the_refused_keys_kept_are_bounded_oldest_forgotten_first(
    counting_hasher: type[_CountingHasher], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(keys_module, "REFUSED_KEYS_KEPT", 2)
    table = _table({"id": "agent", **argon2_entry(KEY_A)})
    wrong = [KEY_A[:ARGON2_PREFIX_CHARS] + c * 30 for c in "xyz"]
    for key in wrong:
        assert table.find(key) is None
    assert counting_hasher.verified == 3
    assert [table.needs_argon2(k) for k in wrong] == [True, False, False]
