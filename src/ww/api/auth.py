"""Who may call what: API keys, the admin key and admin JWTs, checked before any route runs.

Three kinds of route (``access``): exempt ones anyone may call (the service description,
health and the docs), operator ones that need the admin role (listing and deleting sessions,
``/api/v1/admin/*``, ``/api/v1/control/*``) and every other path, which needs a valid
credential. A key bound to sessions is held to them in ``ww.api.deps``: another session is
answered 404, as a memory that does not exist is, so ids and session names do not leak.

Keys are kept only as SHA-256 digests and every presented key is compared with every digest
in constant time, so neither the answer's timing nor a log line tells anything about a key;
logs name a key by its id.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import jwt
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, model_validator
from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from ww.api.docs_ui import STATIC_URL
from ww.api.errors import error_response
from ww.config import SESSION_ID_PATTERN, ConfigError, Settings

__all__ = [
    "EXEMPT_PATHS",
    "EXEMPT_PREFIX",
    "SECURITY_SCHEMES",
    "Access",
    "AuthMiddleware",
    "Authenticator",
    "KeySpec",
    "Principal",
    "Role",
    "access",
    "document_security",
    "hash_key",
    "may_use_session",
]

log = logging.getLogger(__name__)

# The deployment guide's exempt list.
EXEMPT_PATHS = frozenset({"/", "/api/v1/health", "/docs", "/redoc", "/openapi.json"})
# The scripts, styles and icon the docs pages load: open as the pages are, or they stay blank.
# Only the static mount answers under it, and it serves the package's files and nothing else.
EXEMPT_PREFIX = STATIC_URL + "/"
_OPERATOR_PREFIXES = ("/api/v1/admin", "/api/v1/control")
_SESSIONS = "/api/v1/sessions"
_SHA256 = re.compile(r"^(sha256:)?([0-9a-fA-F]{64})$")
JWT_ALGORITHM = "HS256"
# Shorter keys are refused at start-up: a key is a random secret, not a password.
MIN_KEY_LENGTH = 16
MIN_JWT_SECRET_BYTES = 32


class Role(StrEnum):
    USER = "user"
    ADMIN = "admin"


class Access(StrEnum):
    EXEMPT = "exempt"
    USER = "user"
    OPERATOR = "operator"


def access(method: str, path: str) -> Access:
    """The kind of route ``method path`` is (unknown paths need a credential too, so an
    anonymous caller cannot tell which routes exist)."""
    if path in EXEMPT_PATHS or path.startswith(EXEMPT_PREFIX):
        return Access.EXEMPT
    bare = path.rstrip("/")
    if any(bare == p or bare.startswith(p + "/") for p in _OPERATOR_PREFIXES):
        return Access.OPERATOR
    if bare == _SESSIONS:
        return Access.OPERATOR
    if method.upper() == "DELETE" and bare.startswith(_SESSIONS + "/"):
        return Access.OPERATOR
    return Access.USER


@dataclass(frozen=True)
class Principal:
    """The caller a credential names: ``id`` is what logs show, never the key."""

    id: str
    role: Role
    # None: every session.
    sessions: frozenset[str] | None = None


def may_use_session(principal: Principal | None, session_id: str) -> bool:
    return principal is None or principal.sessions is None or session_id in principal.sessions


def hash_key(key: str) -> str:
    """The ``sha256:<hex>`` form a keys file may hold instead of the key."""
    return "sha256:" + hashlib.sha256(key.encode()).hexdigest()


class KeySpec(BaseModel):
    """One entry of ``WW_API_KEYS`` or ``WW_API_KEYS_FILE``."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._:\-]+$")
    key: str | None = Field(None, min_length=MIN_KEY_LENGTH)
    key_sha256: str | None = Field(None, pattern=_SHA256.pattern)
    role: Role = Role.USER
    sessions: list[str] | None = Field(None, min_length=1)

    @model_validator(mode="after")
    def _one_key(self) -> KeySpec:
        if (self.key is None) == (self.key_sha256 is None):
            raise ValueError("give exactly one of key and key_sha256")
        for s in self.sessions or ():
            if not re.match(SESSION_ID_PATTERN, s):
                raise ValueError(f"sessions: {s!r} is not a session id")
        return self

    def digest(self) -> bytes:
        if self.key is not None:
            return hashlib.sha256(self.key.encode()).digest()
        match = _SHA256.match(self.key_sha256 or "")
        assert match is not None  # the field's pattern
        return bytes.fromhex(match.group(2))


_SPECS = TypeAdapter(list[KeySpec])


def _parse_specs(text: str, source: str) -> list[KeySpec]:
    try:
        return _SPECS.validate_json(text)
    except ValidationError as exc:
        # Only locations and reasons: the input holds keys.
        lines = [
            f"{'.'.join(map(str, e['loc'])) or 'value'}: {e['msg']}"
            for e in exc.errors(include_input=False)
        ]
        raise ConfigError(f"{source} is not a valid key list:\n  " + "\n  ".join(lines)) from None


class Authenticator:
    """The keys and JWT settings of one app, resolving request headers to a Principal."""

    def __init__(self, settings: Settings) -> None:
        specs: list[KeySpec] = []
        for name, secret_key, role in (
            ("WW_API_KEY", settings.api_key, Role.USER),
            ("WW_ADMIN_KEY", settings.admin_key, Role.ADMIN),
        ):
            if secret_key is None:
                continue
            key = secret_key.get_secret_value()
            if len(key) < MIN_KEY_LENGTH:
                raise ConfigError(
                    f"{name} must hold at least {MIN_KEY_LENGTH} characters "
                    "(python -m ww.api.token new-key makes one)"
                )
            specs.append(KeySpec(id=name, key=key, role=role))
        if settings.api_keys is not None:
            specs += _parse_specs(settings.api_keys.get_secret_value(), "WW_API_KEYS")
        if settings.api_keys_file is not None:
            try:
                text = settings.api_keys_file.read_text()
            except OSError as exc:
                raise ConfigError(f"WW_API_KEYS_FILE: cannot read it ({exc.strerror})") from None
            specs += _parse_specs(text, f"WW_API_KEYS_FILE {settings.api_keys_file}")
        ids = [s.id for s in specs]
        if len(set(ids)) != len(ids):
            raise ConfigError(f"API key ids must be unique: {sorted(ids)}")
        self._keys = [
            (s.digest(), Principal(s.id, s.role, frozenset(s.sessions) if s.sessions else None))
            for s in specs
        ]
        secret = settings.jwt_secret
        self._jwt_secret = secret.get_secret_value() if secret is not None else None
        if self._jwt_secret is not None and len(self._jwt_secret.encode()) < MIN_JWT_SECRET_BYTES:
            # RFC 7518 3.2: an HS256 key at least as long as the hash (32 bytes).
            raise ConfigError(
                f"WW_JWT_SECRET must hold at least {MIN_JWT_SECRET_BYTES} bytes "
                "(openssl rand -base64 32 makes one)"
            )
        self._issuer = settings.jwt_issuer
        self._audience = settings.jwt_audience
        self.enabled = bool(self._keys) or self._jwt_secret is not None

    def _by_key(self, key: str, admin_header: bool) -> Principal | None:
        digest = hashlib.sha256(key.encode()).digest()
        found: Principal | None = None
        # Every digest is compared, so the time taken does not say which one matched.
        for known, principal in self._keys:
            if hmac.compare_digest(known, digest) and found is None:
                found = principal
        if found is not None and admin_header and found.role is not Role.ADMIN:
            return None  # X-Admin-Key only takes admin keys
        return found

    def _by_jwt(self, token: str) -> Principal | None:
        if self._jwt_secret is None:
            return None
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                self._jwt_secret,
                algorithms=[JWT_ALGORITHM],
                issuer=self._issuer,
                audience=self._audience,
                options={"require": ["exp"], "verify_aud": self._audience is not None},
            )
        except jwt.PyJWTError:
            return None
        try:
            role = Role(claims.get("role", Role.USER))
        except ValueError:
            return None
        sessions = claims.get("sessions")
        if sessions is not None and not (
            isinstance(sessions, list) and all(isinstance(s, str) for s in sessions)
        ):
            return None
        sub = claims.get("sub")
        name = f"jwt:{sub}" if isinstance(sub, str) else "jwt"
        return Principal(name[:80], role, frozenset(sessions) if sessions is not None else None)

    def resolve(self, headers: Mapping[str, str]) -> tuple[Principal | None, str | None]:
        """The caller the headers name, or None and why (a credential given but not valid is
        refused even beside a valid one: a client sending a stale key should hear of it)."""
        found: list[Principal] = []
        presented = False
        for header, admin in (("x-api-key", False), ("x-admin-key", True)):
            value = headers.get(header)
            if value is None:
                continue
            presented = True
            principal = self._by_key(value, admin)
            if principal is None:
                return None, f"the {header_title(header)} header holds no valid key"
            found.append(principal)
        authorization = headers.get("authorization")
        if authorization is not None:
            presented = True
            scheme, _, token = authorization.partition(" ")
            principal = self._by_jwt(token.strip()) if scheme.lower() == "bearer" else None
            if principal is None:
                return None, "the bearer token is not valid (signature, expiry, issuer or audience)"
            found.append(principal)
        if not presented:
            return None, "this route needs X-API-Key, X-Admin-Key or Authorization: Bearer"
        # The strongest credential given decides; an admin sees every session.
        admins = [p for p in found if p.role is Role.ADMIN]
        return (admins or found)[0], None


def header_title(name: str) -> str:
    return "-".join("API" if p == "api" else p.capitalize() for p in name.split("-"))


_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="world-weaver", ApiKey header="X-API-Key"'}


class AuthMiddleware:
    """Refuses a request before any route or body reading: 401 without a valid credential,
    403 for a non-admin on an operator route. Puts the caller in ``request.state.principal``
    (None while auth is off)."""

    def __init__(self, app: ASGIApp, authenticator: Authenticator) -> None:
        self.app = app
        self.auth = authenticator

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        state = scope.setdefault("state", {})
        state["principal"] = None
        kind = access(scope["method"], scope["path"])
        if not self.auth.enabled or kind is Access.EXEMPT:
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        rid = state.get("request_id")
        principal, why = self.auth.resolve(request.headers)
        if principal is None:
            log.info("401 %s %s: %s", scope["method"], scope["path"], why)
            response = error_response(401, "unauthorized", why or "unauthorized", rid, _CHALLENGE)
            await response(scope, receive, send)
            return
        if kind is Access.OPERATOR and principal.role is not Role.ADMIN:
            log.info("403 %s %s for key %s", scope["method"], scope["path"], principal.id)
            response = error_response(
                403,
                "forbidden",
                "this route needs the admin role (X-Admin-Key or an admin JWT)",
                rid,
            )
            await response(scope, receive, send)
            return
        state["principal"] = principal
        await self.app(scope, receive, send)


SECURITY_SCHEMES: dict[str, Any] = {
    "ApiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
    "AdminKey": {"type": "apiKey", "in": "header", "name": "X-Admin-Key"},
    "Bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
}
_ERROR_REF = {
    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorEnvelope"}}}
}


def document_security(schema: dict[str, Any]) -> None:
    """Declare the schemes and, per operation, which credentials it takes and its 401/403."""
    schema.setdefault("components", {}).setdefault("securitySchemes", {}).update(SECURITY_SCHEMES)
    for path, ops in schema.get("paths", {}).items():
        for method, op in ops.items():
            kind = access(method, path)
            if kind is Access.EXEMPT:
                op["security"] = []
                continue
            if kind is Access.OPERATOR:
                op["security"] = [{"AdminKey": []}, {"Bearer": []}]
                op.setdefault("responses", {})["403"] = {
                    "description": "Not an admin credential",
                    **_ERROR_REF,
                }
            else:
                op["security"] = [{"ApiKey": []}, {"AdminKey": []}, {"Bearer": []}]
                # A key bound to other sessions gets 404 on any route that acts in one.
                op.setdefault("responses", {}).setdefault(
                    "404",
                    {"description": "Not found, or a session the key may not use", **_ERROR_REF},
                )
            op.setdefault("responses", {})["401"] = {
                "description": "Missing or invalid credential",
                **_ERROR_REF,
            }
