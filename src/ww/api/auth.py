"""Who may call what: API keys, the admin key and admin JWTs, checked before any route runs.

Three kinds of route (``access``): exempt ones anyone may call (the service description,
health and the docs), operator ones that need the admin role (listing and deleting sessions,
``/api/v1/admin/*``, ``/api/v1/control/*``) and every other path, which needs a valid
credential. A key bound to sessions is held to them in ``ww.api.deps``: another session is
answered 404, as a memory that does not exist is, so ids and session names do not leak.

How keys are stored and found is ``ww.api.keys``; logs name a key by its id, never the key.
The keys of ``WW_API_KEYS_FILE`` are read again when the file changes (its modification
time, size or inode, looked at most once a ``KEYS_FILE_CHECK_S`` on requests), so keys are
added, rotated and revoked without a restart; a file that no longer parses leaves the keys
as they were and logs why.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

import anyio
import jwt
from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from ww.api.docs_ui import STATIC_URL
from ww.api.errors import error_response
from ww.api.keys import (
    MIN_KEY_LENGTH,
    KeySpec,
    KeyTable,
    Principal,
    Role,
    hash_key,
    parse_specs,
)
from ww.api.routers.ui import UI_URL
from ww.config import ConfigError, Settings

__all__ = [
    "EXEMPT_PATHS",
    "EXEMPT_PREFIX",
    "EXPLORER_PREFIX",
    "METRICS_PATH",
    "SECURITY_SCHEMES",
    "Access",
    "AuthMiddleware",
    "Authenticator",
    # Defined in ww.api.keys, named here too for the code that checks callers.
    "KeySpec",
    "Principal",
    "Role",
    "access",
    "document_security",
    "hash_key",
    "is_exempt",
    "may_use_session",
]

log = logging.getLogger(__name__)

# The deployment guide's exempt list.
EXEMPT_PATHS = frozenset({"/", "/api/v1/health", "/docs", "/redoc", "/openapi.json", UI_URL})
# The scripts, styles and icon the docs pages load: open as the pages are, or they stay blank.
# Only the static mount answers under it, and it serves the package's files and nothing else.
EXEMPT_PREFIX = STATIC_URL + "/"
# The explorer's shell (HTML, scripts, styles; no data, no secret): its data calls go to the
# API with the key the person types, so only the shell is open.
EXPLORER_PREFIX = UI_URL + "/"
# Prometheus's scrape path: a user route unless WW_METRICS_PUBLIC opens it.
METRICS_PATH = "/metrics"
_OPERATOR_PREFIXES = ("/api/v1/admin", "/api/v1/control")
_SESSIONS = "/api/v1/sessions"
JWT_ALGORITHM = "HS256"
MIN_JWT_SECRET_BYTES = 32
KEYS_FILE_CHECK_S = 1.0
# argon2 checks run in threads, a few at a time: each takes 64 MiB while it runs.
_ARGON2_THREADS = anyio.CapacityLimiter(2)


class Access(StrEnum):
    EXEMPT = "exempt"
    USER = "user"
    OPERATOR = "operator"


def is_exempt(path: str) -> bool:
    """Whether ``path`` is on the guide's exempt list or a docs asset: open without a
    credential, never rate limited, and open during a lockdown (the one rule for all three;
    ``/metrics`` is not on it, whatever else opens it)."""
    return path in EXEMPT_PATHS or path.startswith((EXEMPT_PREFIX, EXPLORER_PREFIX))


def access(method: str, path: str) -> Access:
    """The kind of route ``method path`` is (unknown paths need a credential too, so an
    anonymous caller cannot tell which routes exist)."""
    if is_exempt(path):
        return Access.EXEMPT
    bare = path.rstrip("/")
    if any(bare == p or bare.startswith(p + "/") for p in _OPERATOR_PREFIXES):
        return Access.OPERATOR
    if bare == _SESSIONS:
        return Access.OPERATOR
    if method.upper() == "DELETE" and bare.startswith(_SESSIONS + "/"):
        return Access.OPERATOR
    return Access.USER


def may_use_session(principal: Principal | None, session_id: str) -> bool:
    return principal is None or principal.sessions is None or session_id in principal.sessions


@dataclass(frozen=True)
class _FileState:
    """What tells that the keys file changed: a rewrite, a move over it (a new inode) or a
    Kubernetes secret's symlink swap (``stat`` follows the link)."""

    mtime_ns: int
    size: int
    inode: int


def _file_state(path: Path) -> _FileState:
    st = os.stat(path)
    return _FileState(st.st_mtime_ns, st.st_size, st.st_ino)


class Authenticator:
    """The keys and JWT settings of one app, resolving request headers to a Principal."""

    def __init__(self, settings: Settings, clock: Callable[[], float] = time.monotonic) -> None:
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
            specs += parse_specs(settings.api_keys.get_secret_value(), "WW_API_KEYS")
        self._fixed_specs = specs
        self._file = settings.api_keys_file
        self._clock = clock
        self._checked_at = clock()
        self._file_state: _FileState | None = None
        self._last_error: str | None = None
        self._keys = self._load()
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
        # Fixed at start: a keys file emptied later refuses every key rather than opening up.
        self.enabled = bool(self._keys) or self._jwt_secret is not None or self._file is not None
        # Paths open to anyone by configuration rather than by the guide's exempt list.
        self.public: frozenset[str] = frozenset(
            {METRICS_PATH} if settings.metrics_public else set()
        )

    def _load(self) -> KeyTable:
        """The key table from the fixed keys and the file as it is now; ConfigError if the
        file cannot be read or parsed."""
        if self._file is None:
            return KeyTable(self._fixed_specs)
        source = f"WW_API_KEYS_FILE {self._file}"
        try:
            state = _file_state(self._file)
            text = self._file.read_text()
        except OSError as exc:
            raise ConfigError(f"{source}: cannot read it ({exc.strerror})") from None
        table = KeyTable(self._fixed_specs + parse_specs(text, source))
        self._file_state = state
        return table

    def _reload_if_changed(self) -> None:
        now = self._clock()
        if self._file is None or now - self._checked_at < KEYS_FILE_CHECK_S:
            return
        self._checked_at = now
        try:
            if _file_state(self._file) == self._file_state:
                return
            table = self._load()
        except OSError as exc:
            self._report(f"WW_API_KEYS_FILE: cannot read it ({exc.strerror})")
        except ConfigError as exc:
            # The message names places and reasons only, never a key.
            self._report(str(exc))
        else:
            self._keys = table
            self._last_error = None
            log.info("WW_API_KEYS_FILE changed: %d keys loaded", len(table))

    def _report(self, problem: str) -> None:
        """Log a reload's failure once, not at every look while the file stays broken."""
        if problem != self._last_error:
            self._last_error = problem
            log.error("%s; keeping the keys loaded before", problem)

    def _by_key(self, key: str, admin_header: bool) -> Principal | None:
        found = self._keys.find(key)
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
        refused even beside a valid one: a client sending a stale key should hear of it).
        May run argon2 checks: from async code, ``resolve_async``."""
        self._reload_if_changed()
        return self._resolve_now(headers)

    def _resolve_now(self, headers: Mapping[str, str]) -> tuple[Principal | None, str | None]:
        """``resolve`` against the keys in force, without looking at the keys file: safe in a
        worker thread, since the reload state is only touched from the caller's side."""
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

    async def resolve_async(
        self, headers: Mapping[str, str]
    ) -> tuple[Principal | None, str | None]:
        """``resolve``, in a worker thread when an argon2 check is due (a key not seen since
        start or the last reload), so the event loop does not wait on it."""
        self._reload_if_changed()  # first, so the check below sees the keys in force
        keys = [headers.get(h) for h in ("x-api-key", "x-admin-key")]
        if any(k is not None and self._keys.needs_argon2(k) for k in keys):
            return await anyio.to_thread.run_sync(
                self._resolve_now, headers, limiter=_ARGON2_THREADS
            )
        return self._resolve_now(headers)


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
        if not self.auth.enabled or kind is Access.EXEMPT or scope["path"] in self.auth.public:
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        rid = state.get("request_id")
        principal, why = await self.auth.resolve_async(request.headers)
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
