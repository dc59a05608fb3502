"""One rate limit across four workers: ``WW_API_WORKERS=4`` with the Redis backend.

The deployment guide warns that an in-process limiter lets each worker allow the full limit;
with ``WW_RATE_LIMITER_BACKEND=redis`` the count lives in Redis, so exactly ``LIMIT`` of the
requests sent round-robin to every worker are served, whichever worker gets each.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from tests.neo4j_launcher import Neo4jProcess
from tests.server.test_workers import WORKERS, Pool, serve

pytestmark = pytest.mark.slow

LIMIT = 10
SENT = 3 * LIMIT
SESSION = {"X-Session-ID": "limited"}


def test_four_workers_share_one_limit_in_redis(
    neo4j_server: Neo4jProcess, redis_url: str, tmp_path: Path
) -> None:
    settings = {
        # Per hour: the window cannot turn over during the test, so the count is exact.
        "WW_RATE_LIMIT": f"{LIMIT}/hour",
        "WW_RATE_LIMITER_BACKEND": "redis",
        "WW_REDIS_URL": redis_url,
    }
    with serve(neo4j_server, tmp_path, **settings) as url:
        pool = Pool(url)
        try:
            pids = pool.discover(WORKERS)
            assert len(pids) >= 2, f"every connection went to one worker: {pids}"
            served: Counter[int] = Counter()
            statuses: list[int] = []
            remaining: list[int] = []
            for i in range(SENT):
                pid = pids[i % len(pids)]
                client = pool.on(pid)  # health checks on the way are exempt: not counted
                r = client.get("/api/v1/episodes", headers=SESSION)
                statuses.append(r.status_code)
                remaining.append(int(r.headers["x-ratelimit-remaining"]))
                if r.status_code == 200:
                    served[pid] += 1
        finally:
            pool.close()
    assert statuses == [200] * LIMIT + [429] * (SENT - LIMIT)
    assert remaining == [*range(LIMIT - 1, -1, -1), *[0] * (SENT - LIMIT)]
    # Every worker served some of the LIMIT: one count, not one per worker.
    assert set(served) == set(pids)


def test_memory_backend_counts_per_worker(neo4j_server: Neo4jProcess, tmp_path: Path) -> None:
    """The guide's warning, shown: without Redis each worker allows the full limit."""
    with serve(neo4j_server, tmp_path, WW_RATE_LIMIT="2/hour") as url:
        pool = Pool(url)
        try:
            pids = pool.discover(WORKERS)
            assert len(pids) >= 2, f"every connection went to one worker: {pids}"
            per_worker = {pid: [_list(pool, pid) for _ in range(3)] for pid in pids}
        finally:
            pool.close()
    assert all(codes == [200, 200, 429] for codes in per_worker.values()), per_worker


def _list(pool: Pool, pid: int) -> int:
    return pool.on(pid).get("/api/v1/episodes", headers=SESSION).status_code
