"""Keys, JWTs and the token tool, below the HTTP layer (the route matrix is in
tests/api/test_authorization_matrix.py)."""

from __future__ import annotations

import io
import time
from pathlib import Path

import jwt
import pytest

from ww.api.auth import Access, Authenticator, Principal, Role, access, hash_key
from ww.api.token import main, mint
from ww.config import ConfigError, Settings

KEY = "ww_unit-test-key-0123456789abcdef"
SECRET = "unit-test-jwt-secret-0123456789abcdef"


def _settings(**kw: object) -> Settings:
    return Settings(_env_file=None, environment="test", **kw)  # type: ignore[arg-type]


def test_nothing_configured_is_open() -> None:
    assert not Authenticator(_settings()).enabled
    assert Authenticator(_settings(jwt_secret=SECRET)).enabled
    assert Authenticator(_settings(api_key=KEY)).enabled


def test_single_api_key_is_a_user_key_for_every_session() -> None:
    auth = Authenticator(_settings(api_key=KEY))
    assert auth.resolve({"x-api-key": KEY}) == (Principal("WW_API_KEY", Role.USER), None)
    principal, why = auth.resolve({"x-api-key": KEY[:-1]})
    assert principal is None and why is not None and KEY[:-1] not in why
    # A user key is not an admin key, whichever header carries it.
    assert auth.resolve({"x-admin-key": KEY})[0] is None


@pytest.mark.parametrize(
    ("keys", "complaint"),
    [
        ("not json", "WW_API_KEYS is not a valid key list"),
        (f'[{{"id": "a", "key": "{KEY}", "key_sha256": "{hash_key(KEY)}"}}]', "exactly one"),
        (f'[{{"id": "a", "key": "{KEY}", "role": "root"}}]', "role"),
        (f'[{{"id": "a", "key": "{KEY}", "sessions": ["bad session"]}}]', "not a session id"),
        (f'[{{"id": "a", "key": "{KEY}"}}, {{"id": "a", "key": "{KEY}x"}}]', "unique"),
        ('[{"id": "a", "key": "short"}]', "at least 16"),
    ],
)
def test_a_bad_key_list_stops_start_up_without_quoting_keys(keys: str, complaint: str) -> None:
    with pytest.raises(ConfigError) as info:
        Authenticator(_settings(api_keys=keys))
    assert complaint in str(info.value)
    assert KEY not in str(info.value) and "short" not in str(info.value)


def test_keys_file_with_hashed_entries(tmp_path: Path) -> None:
    path = tmp_path / "keys.json"
    path.write_text(
        f'[{{"id": "agent-1", "key_sha256": "{hash_key(KEY)}", "sessions": ["s1", "s2"]}},'
        f' {{"id": "ops", "key_sha256": "{hash_key(KEY + "-ops").removeprefix("sha256:")}",'
        ' "role": "admin"}]'
    )
    auth = Authenticator(_settings(api_keys_file=path))
    assert auth.resolve({"x-api-key": KEY})[0] == Principal(
        "agent-1", Role.USER, frozenset({"s1", "s2"})
    )
    assert auth.resolve({"x-admin-key": KEY + "-ops"})[0] == Principal("ops", Role.ADMIN)
    with pytest.raises(ConfigError, match="cannot read"):
        Authenticator(_settings(api_keys_file=tmp_path / "missing.json"))


def test_jwt_claims_are_checked() -> None:
    cfg = _settings(jwt_secret=SECRET, jwt_issuer="ww", jwt_audience="api")
    auth = Authenticator(cfg)
    good = mint(cfg, sub="alice")
    assert auth.resolve({"authorization": f"Bearer {good}"})[0] == Principal(
        "jwt:alice", Role.ADMIN
    )
    now = int(time.time())
    bad = [
        {"role": "admin", "exp": now + 60, "iss": "other", "aud": "api"},
        {"role": "admin", "exp": now + 60, "iss": "ww", "aud": "other"},
        {"role": "admin", "iss": "ww", "aud": "api"},  # no exp
        {"role": "root", "exp": now + 60, "iss": "ww", "aud": "api"},
        {"role": "user", "exp": now + 60, "iss": "ww", "aud": "api", "sessions": "s1"},
    ]
    for claims in bad:
        token = jwt.encode(claims, SECRET, algorithm="HS256")
        assert auth.resolve({"authorization": f"Bearer {token}"})[0] is None, claims
    # "none" and other algorithms are refused whatever they claim.
    unsigned = jwt.encode({"role": "admin", "exp": now + 60}, None, algorithm="none")
    assert auth.resolve({"authorization": f"Bearer {unsigned}"})[0] is None
    assert auth.resolve({"authorization": f"Basic {good}"})[0] is None
    bound = mint(cfg, role=Role.USER, sessions=["s1"])
    assert auth.resolve({"authorization": f"Bearer {bound}"})[0] == Principal(
        "jwt", Role.USER, frozenset({"s1"})
    )


def test_token_tool(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("WW_JWT_SECRET", raising=False)
    assert main(["create"]) == 2
    assert "WW_JWT_SECRET is not set" in capsys.readouterr().err
    monkeypatch.setenv("WW_JWT_SECRET", SECRET)
    assert main(["create", "--ttl", "120", "--sub", "ops"]) == 0
    token = capsys.readouterr().out.strip()
    claims = jwt.decode(token, SECRET, algorithms=["HS256"])
    assert claims["role"] == "admin" and claims["sub"] == "ops"
    assert claims["exp"] - claims["iat"] == 120
    assert main(["new-key"]) == 0
    key, entry = capsys.readouterr().out.split()
    assert key.startswith("ww_") and len(key) > 40 and entry == hash_key(key)
    monkeypatch.setattr("sys.stdin", io.StringIO(key + "\n"))
    assert main(["hash-key"]) == 0
    assert capsys.readouterr().out.strip() == entry


@pytest.mark.parametrize(
    ("method", "path", "kind"),
    [
        ("GET", "/", Access.EXEMPT),
        ("GET", "/docs", Access.EXEMPT),
        ("GET", "/api/v1/sessions/", Access.OPERATOR),
        ("GET", "/api/v1/sessions/s1", Access.USER),
        ("DELETE", "/api/v1/sessions/s1", Access.OPERATOR),
        ("GET", "/api/v1/control/flags", Access.OPERATOR),
        ("POST", "/api/v1/admin/import", Access.OPERATOR),
        ("GET", "/api/v1/administrator", Access.USER),
        ("GET", "/api/v1/health/", Access.USER),
    ],
)
def test_access_of_paths(method: str, path: str, kind: Access) -> None:
    assert access(method, path) is kind


@pytest.mark.parametrize("name", ["api_key", "admin_key"])
def test_a_short_single_key_stops_start_up_without_quoting_it(name: str) -> None:
    with pytest.raises(ConfigError, match="WW_JWT_SECRET must hold at least 32 bytes"):
        Authenticator(_settings(jwt_secret="s" * 31))
    assert Authenticator(_settings(jwt_secret="s" * 32)).enabled
    with pytest.raises(ConfigError) as info:
        Authenticator(_settings(**{name: "tooshort123"}))
    assert f"WW_{name.upper()} must hold at least 16 characters" in str(info.value)
    assert "tooshort123" not in str(info.value)
