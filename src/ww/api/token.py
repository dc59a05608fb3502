"""``python -m ww.api.token``: mint admin JWTs, make API keys and their stored hashes.

    python -m ww.api.token create [--role admin] [--ttl 3600] [--sub NAME] [--session ID ...]
    python -m ww.api.token new-key          # a random key and its sha256: entry
    python -m ww.api.token hash-key < key   # the sha256: entry of a key read from stdin
    python -m ww.api.token hash-key --argon2 < key   # its key_prefix and key_argon2 fields

``create`` signs with ``WW_JWT_SECRET`` (and sets ``iss``/``aud`` from ``WW_JWT_ISSUER`` and
``WW_JWT_AUDIENCE`` when they are set), the same settings the server checks with.
"""

from __future__ import annotations

import argparse
import json
import secrets
import sys
import time
from collections.abc import Sequence
from typing import Any

import jwt

from ww.api.auth import JWT_ALGORITHM
from ww.api.keys import Role, argon2_entry, hash_key
from ww.config import ConfigError, Settings

__all__ = ["main", "mint", "new_key"]

# A visible prefix, as GitHub's and Stripe's keys have: a leaked one is recognisable.
KEY_PREFIX = "ww_"


def mint(
    settings: Settings,
    *,
    role: Role = Role.ADMIN,
    ttl_s: int = 3600,
    sub: str | None = None,
    sessions: Sequence[str] | None = None,
    now: float | None = None,
) -> str:
    if settings.jwt_secret is None:
        raise ConfigError("WW_JWT_SECRET is not set: there is nothing to sign the token with")
    issued = int(now if now is not None else time.time())
    claims: dict[str, Any] = {"role": role.value, "iat": issued, "exp": issued + ttl_s}
    if sub:
        claims["sub"] = sub
    if sessions:
        claims["sessions"] = list(sessions)
    if settings.jwt_issuer:
        claims["iss"] = settings.jwt_issuer
    if settings.jwt_audience:
        claims["aud"] = settings.jwt_audience
    return jwt.encode(claims, settings.jwt_secret.get_secret_value(), algorithm=JWT_ALGORITHM)


def new_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ww.api.token", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    create = sub.add_parser("create", help="print a signed JWT")
    create.add_argument("--role", choices=[r.value for r in Role], default=Role.ADMIN.value)
    create.add_argument("--ttl", type=int, default=3600, help="seconds until it expires")
    create.add_argument("--sub", help="who it is for (shown in logs)")
    create.add_argument("--session", action="append", help="bind it to this session")
    sub.add_parser("new-key", help="print a new random key and its sha256: entry")
    hash_cmd = sub.add_parser("hash-key", help="print the sha256: entry of the key on stdin")
    hash_cmd.add_argument(
        "--argon2",
        action="store_true",
        help="print the key_prefix and key_argon2 fields of an entry instead (argon2 extra)",
    )
    args = parser.parse_args(argv)
    if args.command == "create":
        if args.ttl <= 0:
            parser.error("--ttl must be positive")
        try:
            token = mint(
                Settings(),
                role=Role(args.role),
                ttl_s=args.ttl,
                sub=args.sub,
                sessions=args.session,
            )
        except ConfigError as exc:
            print(exc, file=sys.stderr)
            return 2
        print(token)
    elif args.command == "new-key":
        key = new_key()
        print(key)
        print(hash_key(key))
    else:
        key = sys.stdin.readline().strip()
        if not key:
            print("no key on stdin", file=sys.stderr)
            return 2
        if not args.argon2:
            print(hash_key(key))
            return 0
        try:
            print(json.dumps(argon2_entry(key)))
        except ConfigError as exc:
            print(exc, file=sys.stderr)
            return 2
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
