"""What checking a credential costs per request, by the number of configured keys; and what
counting it against the rate limit costs.

    python bench/auth_overhead.py [--keys 1,10,100,1000] [--rounds 20000] [--out DIR]
                                  [--redis-url redis://127.0.0.1:6379/0]

Every presented key is hashed once and compared with every configured digest (constant time
by design), so the cost grows with the number of keys; a bearer token costs one HS256
verification. Times ``Authenticator.resolve`` for a user key (the last one configured, the
same work as any other), an admin JWT, and a wrong key, in the same run; the ratio to one
key shows the growth. Writes ``DIR/auth_overhead.json`` and ``.md``; prints the JSON.
The rate limiter (``RateLimiter.hit``: the moving window's count and its window stats) is
timed with the in-memory backend and, given ``--redis-url``, with Redis (two round trips to
it per request); ``limiter_ratio_to_user_key`` compares it with checking one key.
A benchmark, not a test.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
    sys.path.insert(1, str(ROOT / "src"))

from ww.api.auth import Authenticator  # noqa: E402
from ww.api.ratelimit import RateLimiter, build_rate_limiter  # noqa: E402
from ww.api.token import mint  # noqa: E402
from ww.config import Settings  # noqa: E402

SECRET = "bench-jwt-secret-0123456789abcdef0123"


def _per_call_us(auth: Authenticator, headers: dict[str, str], rounds: int) -> float:
    start = time.perf_counter()
    for _ in range(rounds):
        auth.resolve(headers)
    return (time.perf_counter() - start) / rounds * 1e6


def _limiter_us(limiter: RateLimiter, rounds: int) -> float:
    async def go() -> float:
        limiter.open()
        try:
            start = time.perf_counter()
            for i in range(rounds):
                # Callers spread over 100 keys, as a busy server's are.
                await limiter.hit("episodes", f"key:k{i % 100}")
            return (time.perf_counter() - start) / rounds * 1e6
        finally:
            await limiter.close()

    return asyncio.run(go())


def limiter_rows(rounds: int, redis_url: str | None) -> list[dict[str, Any]]:
    backends = {"memory": {}} | ({"redis": {"redis_url": redis_url}} if redis_url else {})
    rows = []
    for name, extra in backends.items():
        cfg = Settings(
            _env_file=None,
            environment="test",
            rate_limit="1000000000/hour",  # never refused: the cost of counting alone
            rate_limiter_backend=name,
            **extra,
        )  # type: ignore[call-arg,arg-type]
        limiter = build_rate_limiter(cfg)
        # Redis answers in ~100 µs on loopback: fewer rounds suffice.
        n = rounds if name == "memory" else max(1, rounds // 10)
        rows.append({"backend": name, "rounds": n, "hit_us": round(_limiter_us(limiter, n), 2)})
    return rows


def run(sizes: list[int], rounds: int, redis_url: str | None = None) -> dict[str, Any]:
    rows = []
    for n in sizes:
        keys = [{"id": f"k{i}", "key": f"ww_bench-key-{i:06d}-padding"} for i in range(n)]
        cfg = Settings(
            _env_file=None, environment="test", api_keys=json.dumps(keys), jwt_secret=SECRET
        )  # type: ignore[call-arg,arg-type]
        auth = Authenticator(cfg)
        token = mint(cfg)
        rows.append(
            {
                "keys": n,
                "user_key_us": round(_per_call_us(auth, {"x-api-key": keys[-1]["key"]}, rounds), 2),
                "wrong_key_us": round(_per_call_us(auth, {"x-api-key": "ww_wrong"}, rounds), 2),
                "admin_jwt_us": round(
                    _per_call_us(auth, {"authorization": f"Bearer {token}"}, rounds), 2
                ),
            }
        )
    base = rows[0]["user_key_us"]
    for row in rows:
        row["user_key_ratio_to_first"] = round(row["user_key_us"] / base, 2)
    limiter = limiter_rows(rounds, redis_url)
    for row in limiter:
        row["limiter_ratio_to_user_key"] = round(row["hit_us"] / base, 2)
    return {
        "python": platform.python_version(),
        "rounds": rounds,
        "rows": rows,
        "limiter": limiter,
    }


def markdown(result: dict[str, Any]) -> str:
    lines = [
        "| keys | user key (µs) | wrong key (µs) | admin JWT (µs) | user key / first row |",
        "|---:|---:|---:|---:|---:|",
    ]
    for r in result["rows"]:
        lines.append(
            f"| {r['keys']} | {r['user_key_us']} | {r['wrong_key_us']} | {r['admin_jwt_us']} "
            f"| {r['user_key_ratio_to_first']} |"
        )
    lines += [
        "",
        "| rate limiter | counting one request (µs) | / one key's check |",
        "|---|---:|---:|",
    ]
    for r in result["limiter"]:
        lines.append(f"| {r['backend']} | {r['hit_us']} | {r['limiter_ratio_to_user_key']} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--keys", default="1,10,100,1000")
    parser.add_argument("--rounds", type=int, default=20000)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    parser.add_argument("--redis-url", default=None, help="also time the Redis backend")
    args = parser.parse_args()
    result = run([int(n) for n in args.keys.split(",")], args.rounds, args.redis_url)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "auth_overhead.json").write_text(json.dumps(result, indent=2) + "\n")
    (args.out / "auth_overhead.md").write_text(markdown(result))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
