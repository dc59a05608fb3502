"""API keys: the entries of a key list, how they are stored and how a presented key is found.

An entry holds its key in one of three forms: the key itself, its SHA-256 digest
(``sha256:<hex>``), or an argon2id hash with the key's first ``ARGON2_PREFIX_CHARS``
characters beside it (``key_prefix``). Plain and SHA-256 entries are found by comparing the
presented key's digest with every known digest in constant time, so the answer's timing
says nothing about which one matched.

argon2 is slow on purpose (tens of milliseconds and 64 MiB per check), so it must not run
for every entry on every request: only entries whose ``key_prefix`` starts the presented key
are candidates, and once a key has passed its check its SHA-256 digest joins the fast
comparison. A stranger's key matches no prefix and costs no argon2 at all; each argon2 entry
adds at most one digest, so what is remembered is bounded by the key list. A key that fails
its argon2 check is remembered too (its digest, at most ``REFUSED_KEYS_KEPT`` of them, the
oldest forgotten first), so presenting it again costs no second check; a reload of the key
list builds a new table and so forgets them.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from itertools import chain
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, model_validator

from ww.config import SESSION_ID_PATTERN, ConfigError

__all__ = [
    "ARGON2_EXTRA",
    "ARGON2_MIN_KEY_CHARS",
    "ARGON2_PREFIX_CHARS",
    "MIN_KEY_LENGTH",
    "REFUSED_KEYS_KEPT",
    "KeySpec",
    "KeyTable",
    "Principal",
    "Role",
    "argon2_entry",
    "hash_key",
    "parse_specs",
]

_SHA256 = re.compile(r"^(sha256:)?([0-9a-fA-F]{64})$")
# Shorter keys are refused at start-up: a key is a random secret, not a password.
MIN_KEY_LENGTH = 16
# The visible start of an argon2-stored key, as GitHub and Stripe show theirs. With keys of
# at least ARGON2_MIN_KEY_CHARS, at least 20 characters stay secret.
ARGON2_PREFIX_CHARS = 12
ARGON2_MIN_KEY_CHARS = 32
ARGON2_EXTRA = "pip install 'world-weaver[argon2]'"
# Digests of keys that failed their argon2 check, kept so a caller repeating a wrong key with
# a known prefix cannot keep the argon2 threads busy; bounded so the memory is too.
REFUSED_KEYS_KEPT = 1024


class Role(StrEnum):
    USER = "user"
    ADMIN = "admin"


@dataclass(frozen=True)
class Principal:
    """The caller a credential names: ``id`` is what logs show, never the key."""

    id: str
    role: Role
    # None: every session.
    sessions: frozenset[str] | None = None


def hash_key(key: str) -> str:
    """The ``sha256:<hex>`` form a key list may hold instead of the key."""
    return "sha256:" + hashlib.sha256(key.encode()).hexdigest()


def _password_hasher() -> Any:
    try:
        from argon2 import PasswordHasher
    except ImportError:
        raise ConfigError(
            f"argon2 key hashes need the argon2-cffi package: {ARGON2_EXTRA}"
        ) from None
    return PasswordHasher()


def argon2_entry(key: str) -> dict[str, str]:
    """The ``key_prefix`` and ``key_argon2`` fields of an entry that stores ``key`` as an
    argon2id hash (argon2-cffi's defaults, RFC 9106's low-memory choice)."""
    if len(key) < ARGON2_MIN_KEY_CHARS:
        raise ConfigError(
            f"a key stored as an argon2 hash needs at least {ARGON2_MIN_KEY_CHARS} characters, "
            f"since its first {ARGON2_PREFIX_CHARS} are kept in the clear "
            "(python -m ww.api.token new-key makes one)"
        )
    return {"key_prefix": key[:ARGON2_PREFIX_CHARS], "key_argon2": _password_hasher().hash(key)}


class KeySpec(BaseModel):
    """One entry of ``WW_API_KEYS`` or ``WW_API_KEYS_FILE``."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._:\-]+$")
    key: str | None = Field(None, min_length=MIN_KEY_LENGTH)
    key_sha256: str | None = Field(None, pattern=_SHA256.pattern)
    key_argon2: str | None = Field(None, pattern=r"^\$argon2id\$")
    key_prefix: str | None = Field(
        None, min_length=ARGON2_PREFIX_CHARS, max_length=ARGON2_PREFIX_CHARS
    )
    role: Role = Role.USER
    sessions: list[str] | None = Field(None, min_length=1)

    @model_validator(mode="after")
    def _one_key(self) -> KeySpec:
        if sum(k is not None for k in (self.key, self.key_sha256, self.key_argon2)) != 1:
            raise ValueError("give exactly one of key, key_sha256 and key_argon2")
        if (self.key_argon2 is None) != (self.key_prefix is None):
            raise ValueError(
                f"key_argon2 goes with key_prefix, the key's first {ARGON2_PREFIX_CHARS} "
                "characters (python -m ww.api.token hash-key --argon2 prints both)"
            )
        for s in self.sessions or ():
            if not re.match(SESSION_ID_PATTERN, s):
                raise ValueError(f"sessions: {s!r} is not a session id")
        return self

    def principal(self) -> Principal:
        return Principal(self.id, self.role, frozenset(self.sessions) if self.sessions else None)

    def digest(self) -> bytes | None:
        """The SHA-256 digest of the key; None for an argon2 entry."""
        if self.key is not None:
            return hashlib.sha256(self.key.encode()).digest()
        match = _SHA256.match(self.key_sha256 or "")
        return bytes.fromhex(match.group(2)) if match is not None else None


_SPECS = TypeAdapter(list[KeySpec])


def parse_specs(text: str, source: str) -> list[KeySpec]:
    try:
        return _SPECS.validate_json(text)
    except ValidationError as exc:
        # Only locations and reasons: the input holds keys.
        lines = [
            f"{'.'.join(map(str, e['loc'])) or 'value'}: {e['msg']}"
            for e in exc.errors(include_input=False)
        ]
        raise ConfigError(f"{source} is not a valid key list:\n  " + "\n  ".join(lines)) from None


class KeyTable:
    """The keys of one key list, immutable but for the digests argon2 checks have earned."""

    def __init__(self, specs: Sequence[KeySpec]) -> None:
        ids = [s.id for s in specs]
        if len(set(ids)) != len(ids):
            raise ConfigError(f"API key ids must be unique: {sorted(ids)}")
        self._digests: list[tuple[bytes, Principal]] = []
        self._argon2: dict[str, list[tuple[str, Principal]]] = {}
        for spec in specs:
            digest = spec.digest()
            if digest is not None:
                self._digests.append((digest, spec.principal()))
            elif spec.key_argon2 is not None and spec.key_prefix is not None:
                self._argon2.setdefault(spec.key_prefix, []).append(
                    (spec.key_argon2, spec.principal())
                )
        self._hasher = self._check_argon2_hashes() if self._argon2 else None
        # sha256(key) -> its entry, for keys that passed their argon2 check.
        self._verified: dict[bytes, Principal] = {}
        # sha256(key) of keys that failed every candidate's check, oldest first.
        self._refused: OrderedDict[bytes, None] = OrderedDict()
        self._refused_lock = threading.Lock()

    def _check_argon2_hashes(self) -> Any:
        hasher = _password_hasher()
        from argon2 import extract_parameters
        from argon2.exceptions import InvalidHashError

        for entries in self._argon2.values():
            for encoded, principal in entries:
                try:
                    extract_parameters(encoded)
                except InvalidHashError:
                    raise ConfigError(
                        f"API key {principal.id!r}: key_argon2 is not a valid argon2id hash"
                    ) from None
        return hasher

    def __len__(self) -> int:
        return len(self._digests) + sum(map(len, self._argon2.values()))

    def _fast(self, digest: bytes) -> Principal | None:
        found: Principal | None = None
        # Every digest is compared, so the time taken does not say which one matched.
        for known, principal in chain(self._digests, self._verified.items()):
            if hmac.compare_digest(known, digest) and found is None:
                found = principal
        return found

    def needs_argon2(self, key: str) -> bool:
        """Whether finding ``key`` would run an argon2 check (the caller may then do it off
        the event loop)."""
        if key[:ARGON2_PREFIX_CHARS] not in self._argon2:
            return False
        digest = hashlib.sha256(key.encode()).digest()
        return self._fast(digest) is None and not self._was_refused(digest)

    def _was_refused(self, digest: bytes) -> bool:
        with self._refused_lock:
            return digest in self._refused

    def _remember_refused(self, digest: bytes) -> None:
        with self._refused_lock:
            self._refused[digest] = None
            while len(self._refused) > REFUSED_KEYS_KEPT:
                self._refused.popitem(last=False)

    def find(self, key: str) -> Principal | None:
        digest = hashlib.sha256(key.encode()).digest()
        found = self._fast(digest)
        candidates = self._argon2.get(key[:ARGON2_PREFIX_CHARS], ())
        if found is not None or self._hasher is None or not candidates:
            return found
        if self._was_refused(digest):
            return None
        from argon2.exceptions import VerificationError

        for encoded, principal in candidates:
            try:
                self._hasher.verify(encoded, key)
            except VerificationError:
                continue
            # A new dict rather than an insert: other threads may be reading the old one.
            self._verified = {**self._verified, digest: principal}
            return principal
        self._remember_refused(digest)
        return None
