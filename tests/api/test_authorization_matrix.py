"""Every route of the OpenAPI schema x every kind of caller gets the right status.

ROUTES below is the one table of who may call what; a route the schema has and the table
lacks fails ``test_every_route_has_a_row``, so a new route cannot ship without a decision.
Requests go through the real app with keys, an admin key and a JWT secret configured.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Iterator
from typing import Any

import jwt
import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import checks
from schemathesis.openapi import from_asgi
from schemathesis.python import asgi

from tests.api.helpers import ENVELOPE_KEYS, running_client, scratch_dir
from tests.conftest import ManualClock
from tests.neo4j_launcher import reset_record_store
from ww.api import create_app
from ww.api.auth import Access, hash_key
from ww.config import Settings
from ww.control.flags import Flags
from ww.embedding import EmbeddingService, OnnxEmbedder
from ww.engine import build_engine

E, U, O = Access.EXEMPT, Access.USER, Access.OPERATOR  # noqa: E741

ROUTES: dict[tuple[str, str], Access] = {
    ("GET", "/"): E,
    ("GET", "/api/v1/health"): E,
    ("GET", "/api/v1/auth/whoami"): U,
    ("GET", "/api/v1/sessions"): O,
    ("GET", "/api/v1/sessions/{session_id}"): U,
    ("DELETE", "/api/v1/sessions/{session_id}"): O,
    ("GET", "/api/v1/admin/export"): O,
    ("POST", "/api/v1/admin/import"): O,
    ("GET", "/api/v1/control/flags"): O,
    ("GET", "/api/v1/control/flags/{name}"): O,
    ("PATCH", "/api/v1/control/flags/{name}"): O,
    ("GET", "/api/v1/control/audit"): O,
    ("GET", "/api/v1/control/emergency"): O,
    ("POST", "/api/v1/control/emergency/panic"): O,
    ("POST", "/api/v1/control/emergency/recover"): O,
    ("GET", "/api/v1/control/circuits"): O,
    ("GET", "/api/v1/control/circuits/{name}"): O,
    ("POST", "/api/v1/control/circuits/{name}"): O,
    ("POST", "/api/v1/consolidate"): U,
    ("GET", "/api/v1/consolidate/links/{memory_id}"): U,
    ("GET", "/api/v1/graph"): U,
    ("GET", "/api/v1/dynamics/memories/{memory_id}/retrievability"): U,
    ("GET", "/api/v1/dynamics/distribution"): U,
    ("GET", "/api/v1/dynamics/consolidation"): U,
    ("POST", "/api/v1/feedback"): U,
    ("POST", "/api/v1/recall"): U,
    ("POST", "/api/v1/episodes"): U,
    ("GET", "/api/v1/episodes"): U,
    ("POST", "/api/v1/episodes/batch"): U,
    ("POST", "/api/v1/episodes/recall"): U,
    ("POST", "/api/v1/episodes/{episode_id}/mark-important"): U,
    ("GET", "/api/v1/episodes/{episode_id}"): U,
    ("GET", "/api/v1/episodes/{episode_id}/state"): U,
    ("PATCH", "/api/v1/episodes/{episode_id}"): U,
    ("DELETE", "/api/v1/episodes/{episode_id}"): U,
    ("POST", "/api/v1/entities"): U,
    ("GET", "/api/v1/entities"): U,
    ("POST", "/api/v1/entities/recall"): U,
    ("POST", "/api/v1/entities/spread-activation"): U,
    ("GET", "/api/v1/entities/{entity_id}"): U,
    ("PATCH", "/api/v1/entities/{entity_id}"): U,
    ("DELETE", "/api/v1/entities/{entity_id}"): U,
    ("POST", "/api/v1/entities/{entity_id}/supersede"): U,
    ("GET", "/api/v1/entities/{entity_id}/history"): U,
    ("POST", "/api/v1/entities/{entity_id}/relations"): U,
    ("GET", "/api/v1/entities/{entity_id}/relations"): U,
    ("DELETE", "/api/v1/entities/{entity_id}/relations/{relation_id}"): U,
    ("POST", "/api/v1/skills"): U,
    ("GET", "/api/v1/skills"): U,
    ("POST", "/api/v1/skills/recall"): U,
    ("POST", "/api/v1/skills/how-to"): U,
    ("GET", "/api/v1/skills/{skill_id}"): U,
    ("PATCH", "/api/v1/skills/{skill_id}"): U,
    ("DELETE", "/api/v1/skills/{skill_id}"): U,
    ("GET", "/api/v1/skills/{skill_id}/versions"): U,
    ("POST", "/api/v1/skills/{skill_id}/execute"): U,
    ("GET", "/api/v1/skills/{skill_id}/executions"): U,
    ("POST", "/api/v1/skills/{skill_id}/deprecate"): U,
}
# User routes that act in no session: a key bound to other sessions is still a valid key.
SESSIONLESS = {("GET", "/api/v1/auth/whoami")}
# Exempt routes outside the schema.
UNLISTED_EXEMPT = [
    "/docs",
    "/redoc",
    "/openapi.json",
    # What the docs pages load: without it they are blank while auth is on.
    "/static/docs/swagger-ui/swagger-ui-bundle.js",
    "/static/docs/swagger-ui/favicon-32x32.png",
    "/static/docs/redoc/redoc.standalone.js",
]

USER_KEY = "ww_user-key-for-every-session-0001"
BOUND_KEY = "ww_bound-key-for-session-mine-0002"
HASHED_KEY = "ww_hashed-key-for-session-mine-0003"
ADMIN_KEY = "ww_admin-key-0004-long-enough-here"
SECRET = "jwt-secret-for-the-authorization-matrix-0005"
ISSUER, AUDIENCE = "ww-tests", "world-weaver"
MINE, OTHER = "mine", "other-session"
ANY_ID = "0b0c1d2e-3f40-4152-8364-758697a8b9ca"


def _token(**claims: Any) -> str:
    base = {"role": "admin", "exp": int(time.time()) + 600, "iss": ISSUER, "aud": AUDIENCE}
    return jwt.encode({**base, **claims}, SECRET, algorithm="HS256")


CALLERS: dict[str, dict[str, str]] = {
    "no credential": {},
    "wrong key": {"X-API-Key": "ww_not-a-key-anybody-was-given-00"},
    "bound to another session": {"X-API-Key": BOUND_KEY},
    "user key": {"X-API-Key": USER_KEY},
    "hashed bound key, own session": {"X-API-Key": HASHED_KEY},
    "admin key": {"X-Admin-Key": ADMIN_KEY},
    "admin JWT": {"Authorization": f"Bearer {_token()}"},
    "expired JWT": {"Authorization": f"Bearer {_token(exp=int(time.time()) - 5)}"},
    "JWT wrong signature": {
        "Authorization": "Bearer "
        + jwt.encode({"role": "admin", "exp": int(time.time()) + 600}, "not-the-secret-x" * 3)
    },
    "JWT wrong audience": {"Authorization": f"Bearer {_token(aud='someone-else')}"},
    "user key as X-Admin-Key": {"X-Admin-Key": USER_KEY},
}
AUTHENTICATED = {"user key", "hashed bound key, own session", "admin key", "admin JWT"}
ADMINS = {"admin key", "admin JWT"}


def _keys() -> str:
    return json.dumps(
        [
            {"id": "everything", "key": USER_KEY},
            {"id": "bound-other", "key": BOUND_KEY, "sessions": [OTHER]},
            {"id": "hashed-mine", "key_sha256": hash_key(HASHED_KEY), "sessions": [MINE]},
        ]
    )


@pytest.fixture(scope="module")
def client(onnx_embedder: OnnxEmbedder) -> Iterator[TestClient]:
    with (
        scratch_dir() as tmp,
        running_client(
            tmp / "data",
            onnx_embedder,
            ManualClock(),
            api_keys=_keys(),
            admin_key=ADMIN_KEY,
            jwt_secret=SECRET,
            jwt_issuer=ISSUER,
            jwt_audience=AUDIENCE,
        ) as c,
    ):
        yield c


def _operations(client: TestClient) -> list[tuple[str, str]]:
    paths = client.app.openapi()["paths"]  # type: ignore[attr-defined]
    return sorted((m.upper(), p) for p, ops in paths.items() for m in ops)


def _url(path: str) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: MINE if m.group(1) == "session_id" else ANY_ID, path)


def test_every_route_has_a_row(client: TestClient) -> None:
    ops = set(_operations(client))
    assert ops - set(ROUTES) == set(), "routes without a row in ROUTES: decide who may call them"
    assert set(ROUTES) - ops == set(), "rows for routes the app no longer has"


@pytest.mark.parametrize("caller", list(CALLERS))
def test_matrix(client: TestClient, caller: str) -> None:
    headers = {**CALLERS[caller], "X-Session-ID": MINE}
    wrong: list[str] = []
    for method, path in _operations(client):
        kind = ROUTES[(method, path)]
        r = client.request(method, _url(path), headers=headers)
        if kind is Access.EXEMPT:
            expected: set[int] | None = {200}
        elif caller not in AUTHENTICATED and caller != "bound to another session":
            expected = {401}
        elif kind is Access.OPERATOR and caller not in ADMINS:
            expected = {403}
        elif caller == "bound to another session":
            expected = {200} if (method, path) in SESSIONLESS else {404}
        else:
            # Let through: whatever the route answers an empty request, never an auth refusal.
            expected = None
            ok = r.status_code not in (401, 403) and r.status_code < 500
            if not ok:
                wrong.append(f"{method} {path}: {r.status_code} {r.text[:200]}")
            continue
        if r.status_code not in expected:
            wrong.append(f"{method} {path}: {r.status_code} not {expected}: {r.text[:200]}")
        elif r.status_code in (401, 403, 404) and kind is not Access.EXEMPT:
            assert set(r.json()["error"]) == ENVELOPE_KEYS
            if r.status_code == 401:
                assert "Bearer" in r.headers["WWW-Authenticate"]
    assert wrong == []


def test_let_through_callers_get_what_an_admin_gets(client: TestClient) -> None:
    """An authorised user sees the route's own answer: the same status as an admin's."""
    for method, path in _operations(client):
        if ROUTES[(method, path)] is not Access.USER or method != "GET":
            continue
        got = {
            name: client.request(
                method, _url(path), headers={**CALLERS[name], "X-Session-ID": MINE}
            ).status_code
            for name in ("user key", "hashed bound key, own session", "admin key", "admin JWT")
        }
        assert len(set(got.values())) == 1, (method, path, got)


# Routes outside the schema that need a credential, and their kind: /metrics takes any
# valid key (WW_METRICS_PUBLIC=true opens it: tests/api/test_metrics.py).
UNLISTED_GUARDED: dict[tuple[str, str], Access] = {("GET", "/metrics"): U}


@pytest.mark.parametrize("caller", list(CALLERS))
def test_unlisted_guarded_routes(client: TestClient, caller: str) -> None:
    for (method, path), kind in UNLISTED_GUARDED.items():
        assert kind is Access.USER
        r = client.request(method, path, headers={**CALLERS[caller], "X-Session-ID": MINE})
        # A key bound to other sessions is still a valid key: the metrics name no session.
        valid = caller in AUTHENTICATED or caller == "bound to another session"
        assert r.status_code == (200 if valid else 401), (caller, path, r.text[:200])
        if not valid:
            assert set(r.json()["error"]) == ENVELOPE_KEYS


def test_unlisted_exempt_routes_are_open(client: TestClient) -> None:
    for path in UNLISTED_EXEMPT:
        assert client.get(path).status_code == 200, path
    assert client.head("/api/v1/health").status_code == 200


def test_unknown_paths_need_a_credential_too(client: TestClient) -> None:
    assert client.get("/api/v1/no-such-route").status_code == 401
    # The docs' asset folder is open, the rest of /static is not.
    assert client.get("/static/docs").status_code == 401
    assert client.get("/static/other.js").status_code == 401
    # A path that climbs out of the folder stays with the static files, which refuse it.
    r = client.get("/static/docs/%2e%2e/%2e%2e/api/v1/sessions")
    assert r.status_code == 404, r.text
    assert client.get("/api/v1/control/flags").status_code == 401
    r = client.get("/api/v1/control/flags", headers={"X-API-Key": USER_KEY})
    assert r.status_code == 403


def test_bound_key_works_in_its_session_and_hides_others(client: TestClient) -> None:
    own = {"X-API-Key": HASHED_KEY, "X-Session-ID": MINE}
    r = client.post("/api/v1/episodes", json={"content": "bound key memory"}, headers=own)
    assert r.status_code == 201, r.text
    memory = r.json()["id"]
    assert client.get(f"/api/v1/episodes/{memory}", headers=own).status_code == 200
    # The default session (no X-Session-ID) is another session for this key.
    r = client.get(f"/api/v1/episodes/{memory}", headers={"X-API-Key": HASHED_KEY})
    assert r.status_code == 404
    foreign = {"X-API-Key": BOUND_KEY, "X-Session-ID": MINE}
    missing = client.get(f"/api/v1/episodes/{ANY_ID}", headers=own)
    hidden = client.get(f"/api/v1/episodes/{memory}", headers=foreign)
    assert (hidden.status_code, hidden.json()["error"]["code"]) == (
        missing.status_code,
        missing.json()["error"]["code"],
    )
    stats = client.get(f"/api/v1/sessions/{MINE}", headers={"X-API-Key": BOUND_KEY})
    absent = client.get("/api/v1/sessions/never-used", headers={"X-API-Key": USER_KEY})
    assert stats.status_code == absent.status_code == 404
    assert stats.json()["error"]["message"] == absent.json()["error"]["message"]


def test_a_stale_key_beside_a_good_one_is_refused(client: TestClient) -> None:
    headers = {"X-API-Key": "ww_stale-key-nobody-has-anymore-00", "X-Admin-Key": ADMIN_KEY}
    assert client.get("/api/v1/sessions", headers=headers).status_code == 401


def test_schema_declares_the_credentials(client: TestClient) -> None:
    schema = client.app.openapi()  # type: ignore[attr-defined]
    schemes = schema["components"]["securitySchemes"]
    assert schemes["ApiKey"] == {"type": "apiKey", "in": "header", "name": "X-API-Key"}
    assert schemes["Bearer"]["scheme"] == "bearer"
    assert schema["paths"]["/api/v1/health"]["get"]["security"] == []
    assert {"Bearer": []} in schema["paths"]["/api/v1/sessions"]["get"]["security"]
    assert {"ApiKey": []} not in schema["paths"]["/api/v1/sessions"]["get"]["security"]
    assert "401" in schema["paths"]["/api/v1/episodes"]["post"]["responses"]


# The admin import takes JSON Lines; fuzzed bodies go on the wire as text (as in
# test_schemathesis).
schemathesis.serializer.alias("application/x-ndjson", "text/plain")
FUZZ_CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_schema_conformance,
]
FUZZ_CALLERS = st.sampled_from(
    [
        {},
        {"X-API-Key": "ww_not-a-key-anybody-was-given-00"},
        {"X-API-Key": HASHED_KEY},
        {"X-API-Key": BOUND_KEY},
        {"X-API-Key": USER_KEY},
        {"X-Admin-Key": ADMIN_KEY},
        {"Authorization": f"Bearer {_token()}"},
        {"Authorization": f"Bearer {_token(exp=int(time.time()) - 5)}"},
        {"Authorization": "Bearer not.a.jwt"},
    ]
)
FUZZ_SESSIONS = st.sampled_from([None, MINE, OTHER, "fuzz-x"])


def _control_last(route: tuple[str, str]) -> tuple[bool, str, str]:
    method, path = route
    return path.startswith("/api/v1/control"), method, path


def _restore_control(schema: schemathesis.BaseSchema) -> None:
    """Undo what fuzzing the control routes set (a level, blocking flags): on the server tier
    the control state lives in the Neo4j every app of this module shares."""
    admin = {"X-Admin-Key": ADMIN_KEY}
    recover = schema["/api/v1/control/emergency/recover"]["POST"]
    r = recover.Case(body={"level": "NONE"}, headers=admin).call()
    assert r.status_code == 200, r.text
    patch = schema["/api/v1/control/flags/{name}"]["PATCH"]
    for name, field in Flags.model_fields.items():
        body = {"enabled": field.default}
        r = patch.Case(path_parameters={"name": name}, body=body, headers=admin).call()
        assert r.status_code == 200, r.text


def _writes_accepted(client: TestClient) -> bool:
    control = client.get("/api/v1/health").json()["control"]
    return bool(control["level"] == "NONE" and control["writes"] == "accepted")


def test_schemathesis_with_auth_on(onnx_embedder: OnnxEmbedder, client: TestClient) -> None:
    """Every operation, fuzzed with every kind of credential: no 5xx, and every answer (401
    and 403 included) is one the schema documents, in the documented shape."""
    with scratch_dir() as tmp:
        cfg = Settings(
            _env_file=None,  # type: ignore[call-arg]
            data_dir=tmp / "data",
            environment="test",  # type: ignore[arg-type]
            api_keys=_keys(),  # type: ignore[arg-type]
            admin_key=ADMIN_KEY,  # type: ignore[arg-type]
            jwt_secret=SECRET,  # type: ignore[arg-type]
            jwt_issuer=ISSUER,
            jwt_audience=AUDIENCE,
        )
        reset_record_store(cfg)
        service = EmbeddingService(onnx_embedder, cache_size=4096, batch_size=32)
        app = create_app(cfg, build_engine(cfg, clock=ManualClock(), embedder=service))
        try:
            schema = from_asgi("/openapi.json", app)
            # Control last: a fuzzed panic or read_only_mode would turn every later route's
            # answer into the block's 503.
            for method, path in sorted(ROUTES, key=_control_last):
                operation = schema[path][method]

                @given(case=operation.as_strategy(), caller=FUZZ_CALLERS, session=FUZZ_SESSIONS)
                @settings(
                    max_examples=8,
                    deadline=None,
                    suppress_health_check=list(HealthCheck),
                    database=None,
                    derandomize=True,
                )
                def run(
                    case: schemathesis.Case, caller: dict[str, str], session: str | None
                ) -> None:
                    headers = {**caller, **({"X-Session-ID": session} if session else {})}
                    case.call_and_validate(headers=headers, checks=FUZZ_CHECKS)

                run()
            _restore_control(schema)
        finally:
            asgi.shutdown_lifespans()
    # The module's app polls the shared control state every half second: the next test
    # starts once it has seen the restored one.
    for _ in range(200):
        if _writes_accepted(client):
            break
        time.sleep(0.05)
    assert _writes_accepted(client)


def test_anonymous_body_is_refused_before_it_is_read(client: TestClient) -> None:
    # Over WW_API_MAX_BODY_BYTES: the body guard would say 413 had auth not answered first.
    body = b"[" + b"0," * (6 * 1024 * 1024) + b"0]"
    r = client.post("/api/v1/episodes", content=body, headers={"Content-Type": "application/json"})
    assert r.status_code == 401
    r = client.post(
        "/api/v1/episodes",
        content=body,
        headers={"Content-Type": "application/json", "X-API-Key": USER_KEY},
    )
    assert r.status_code == 413, r.text


def test_open_app_warns_once_and_keyed_app_does_not(
    onnx_embedder: OnnxEmbedder, caplog: pytest.LogCaptureFixture
) -> None:
    service = EmbeddingService(onnx_embedder, cache_size=16, batch_size=8)
    for keys, warnings in (({}, 1), ({"api_key": USER_KEY}, 0)):
        cfg = Settings(_env_file=None, data_dir="/nonexistent/ww-auth", environment="test", **keys)  # type: ignore[arg-type]
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="ww.api.app"):
            create_app(cfg, build_engine(cfg, clock=ManualClock(), embedder=service))
        got = [r.getMessage() for r in caplog.records if "every route is open" in r.getMessage()]
        assert len(got) == warnings, got


def test_whoami_names_the_caller_without_its_key(client: TestClient) -> None:
    cases = {
        "user key": {"auth": True, "id": "everything", "role": "user", "sessions": None},
        "hashed bound key, own session": {
            "auth": True,
            "id": "hashed-mine",
            "role": "user",
            "sessions": [MINE],
        },
        # Bound to another session, it still learns which ones it may use.
        "bound to another session": {
            "auth": True,
            "id": "bound-other",
            "role": "user",
            "sessions": [OTHER],
        },
        "admin key": {"auth": True, "id": "WW_ADMIN_KEY", "role": "admin", "sessions": None},
        "admin JWT": {"auth": True, "id": "jwt", "role": "admin", "sessions": None},
    }
    for caller, expected in cases.items():
        r = client.get("/api/v1/auth/whoami", headers={**CALLERS[caller], "X-Session-ID": MINE})
        assert (r.status_code, r.json()) == (200, expected), caller
        assert all(key not in r.text for key in (USER_KEY, HASHED_KEY, BOUND_KEY, ADMIN_KEY))
    assert client.get("/api/v1/auth/whoami").status_code == 401


def test_whoami_with_auth_off_is_an_anonymous_admin(onnx_embedder: OnnxEmbedder) -> None:
    with scratch_dir() as tmp, running_client(tmp / "data", onnx_embedder, ManualClock()) as c:
        r = c.get("/api/v1/auth/whoami")
    assert (r.status_code, r.json()) == (
        200,
        {"auth": False, "id": None, "role": "admin", "sessions": None},
    )
