"""One million memories in one embedded data directory: ingest, index build, RSS, start-up
and recall latency at that scale (issue 17, "Scale").

    python bench/scale.py [--total 1000000] [--layout one|ten] [--pool 20000]
                          [--out bench/results] [--data-dir DIR] [--keep-data]

Embedding a million texts with the vendored model takes about an hour of this machine on
its own (``raw_embed_batched_per_s``), so the benchmark pays for it once per pool, not per
memory: it embeds ``--pool`` distinct synthetic texts (:mod:`bench.synthetic`) with the
real model, batched, and memory ``i`` gets the text of pool entry ``i % pool`` with its
number appended and that entry's vector plus a little seeded noise (cosine ~0.999 to the
original, so no two memories share a vector and HNSW meets no exact ties). What is stored is
then what the real model would store for a million notes of that vocabulary; the ingest time
without the model is ``store_ingest_s``, and ``projected_ingest_s`` adds what the model
would take at its measured batched rate.

1. ingests ``--total`` memories in process through ``MemoryEngine.create_episodes``
   (batches of 500) into one session (``--layout one``) or ten (``--layout ten``);
2. builds the HNSW index (``VectorIndex.optimize`` until nothing is left unindexed):
   ``index_build_s``; closes the engine and reports the data directory's size;
3. starts ``python -m ww.api.server`` on it twice (127.0.0.1), spawn to the first healthy
   answer: ``startup_first_s`` with the close mark cleared as a crash leaves it (start-up
   compares both stores id by id, ``ww.engine.close_mark``) and ``startup_s`` after that
   server's stop (``clean_stop``: it marked the stores closed, so sessions whose counts
   agree are trusted); after the second start, how long the server's background task
   took to load the keyword index (``keyword_warm_s``, from its log) and, after a clean
   stop, its first maintenance pass to compare the ids (``ids_compared_s``), then the first
   recall of the session and the next: ``first_recall_ms`` / ``second_recall_ms``; then
   recall (limit 10, ``learn=false``, distinct queries so no cache answers) at
   concurrency 1 and 8; the server's RSS after start, after the keyword index, and its
   peak.

Writes ``DIR/scale-<layout>.json`` and ``DIR/scale-<layout>.md``. A benchmark, not a test.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import re
import resource
import shutil
import sqlite3
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script: make `bench` and `ww` importable
    sys.path.insert(0, str(ROOT))
    sys.path.insert(1, str(ROOT / "src"))

import httpx  # noqa: E402

from bench.bench_server import Server, log  # noqa: E402
from bench.latency_embed import raw_embed_batched_rate  # noqa: E402
from bench.latency_first import recall_ms  # noqa: E402
from bench.latency_load import REQUEST_TIMEOUT_S, QueryPool, recall_phase  # noqa: E402
from bench.run_info import versions  # noqa: E402
from bench.synthetic import generate_memories, generate_queries  # noqa: E402
from ww.config import Settings  # noqa: E402
from ww.embedding import EmbeddingService, load_embedder  # noqa: E402
from ww.engine import build_engine  # noqa: E402
from ww.engine.close_mark import CLOSE_MARK_KEY, CLOSED  # noqa: E402
from ww.models import EpisodeCreate  # noqa: E402

__all__ = ["PoolEmbedder", "main", "run"]

DEFAULT_OUT = ROOT / "bench" / "results"
BATCH = 500
NOISE = 0.05  # norm of the noise added to a unit pool vector: cosine ~0.9988 to it
_MARK = " (#"


class PoolEmbedder:
    """An ``Embedder`` for texts ``f"{pool text} (#{i})"``: pool vector ``i % len(pool)``
    plus noise seeded by ``i``, unit length. Reports the real model's id, so the server
    opens the data directory with the real model and embeds queries with it."""

    def __init__(self, pool: npt.NDArray[np.float32], model_id: str) -> None:
        self._pool = pool
        self._model_id = model_id

    @property
    def model_id(self) -> str:
        return self._model_id

    @property
    def dimension(self) -> int:
        return int(self._pool.shape[1])

    def embed(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        out = np.empty((len(texts), self.dimension), dtype=np.float32)
        for row, text in enumerate(texts):
            i = int(text[text.rindex(_MARK) + len(_MARK) : -1])
            noise = np.random.default_rng(i).standard_normal(self.dimension)
            v = self._pool[i % len(self._pool)] + NOISE * noise / np.linalg.norm(noise)
            out[row] = v / np.linalg.norm(v)
        return out


def pool_vectors(texts: list[str], cache: Path) -> tuple[npt.NDArray[np.float32], float, str]:
    """The real model's vectors of ``texts`` (cached in ``cache``), its batched rate and id."""
    embedder = load_embedder(Settings())
    sample = texts[:2000]
    rate = raw_embed_batched_rate(embedder, sample)  # type: ignore[arg-type]
    if cache.exists():
        vectors = np.load(cache)
        if vectors.shape[0] == len(texts):
            return vectors, rate, embedder.model_id
    log(f"embedding a pool of {len(texts)} texts with the real model")
    order = sorted(range(len(texts)), key=lambda k: len(texts[k]))
    vectors = np.empty((len(texts), embedder.dimension), dtype=np.float32)
    for start in range(0, len(order), 32):
        idx = order[start : start + 32]
        vectors[idx] = embedder.embed([texts[k] for k in idx])
    np.save(cache, vectors)
    return vectors, rate, embedder.model_id


def sessions_for(layout: str) -> list[str]:
    return ["scale-0"] if layout == "one" else [f"scale-{k}" for k in range(10)]


async def ingest(
    data_dir: Path, bodies: list[dict[str, Any]], embedder: PoolEmbedder, total: int, layout: str
) -> dict[str, Any]:
    settings = Settings(data_dir=data_dir)
    service = EmbeddingService(embedder, cache_size=0, batch_size=settings.embedding_batch_size)
    engine = build_engine(settings, embedder=service)
    await engine.open()
    sessions = sessions_for(layout)
    per_session = total // len(sessions)
    try:
        t0 = last = time.perf_counter()
        done = 0
        for s, session in enumerate(sessions):
            for start in range(0, per_session, BATCH):
                batch = []
                for i in range(
                    s * per_session + start, s * per_session + min(start + BATCH, per_session)
                ):
                    body = dict(bodies[i % len(bodies)])
                    body["content"] = f"{body['content']}{_MARK}{i})"
                    body["external_id"] = f"scale-{i}"
                    batch.append(EpisodeCreate(**body))
                await engine.create_episodes(session, batch)
                done += len(batch)
                if time.perf_counter() - last > 60:
                    last = time.perf_counter()
                    log(f"  ingested {done}/{total} ({done / (last - t0):.0f}/s)")
        store_s = time.perf_counter() - t0
        log(f"ingested {done} in {store_s:.0f} s; building the HNSW index")
        t1 = time.perf_counter()
        rounds = 0
        while await engine.vectors.unindexed() > 0 and await engine.vectors.optimize():
            rounds += 1
        build_s = time.perf_counter() - t1
        unindexed = await engine.vectors.unindexed()
    finally:
        await engine.close()
    return {
        "memories": done,
        "sessions": len(sessions),
        "store_ingest_s": round(store_s, 1),
        "store_ingest_per_s": round(done / store_s, 1),
        "index_build_s": round(build_s, 1),
        "index_build_rounds": rounds,
        "unindexed_after_build": unindexed,
        "ingest_peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


WARM_LOG = re.compile(r"keyword indexes of (\d+) sessions loaded in ([\d.]+) s")
# After a start that trusted agreeing counts, the first maintenance pass compares ids.
IDS_LOG = re.compile(r"episode ids compared in the background in ([\d.]+) s")
WARM_TIMEOUT_S = 600.0


def wait_for_log(server: Server, line: re.Pattern[str], since: int) -> float | None:
    """The seconds a log line of this start reports (the log after offset ``since``: the
    file keeps earlier starts' lines), or None if none came within the timeout."""
    deadline = time.monotonic() + WARM_TIMEOUT_S
    while time.monotonic() < deadline:
        found = line.findall(server.log_text()[since:])
        if found:
            return float(found[-1][-1])
        time.sleep(0.5)
    return None


async def serve(
    server: Server, session: str, queries: list[str], c1: int, c8: int
) -> dict[str, Any]:
    out: dict[str, Any] = {"rss_after_start_mb": server.memory_mb().get("VmRSS")}
    async with httpx.AsyncClient(
        base_url=server.base_url,
        timeout=REQUEST_TIMEOUT_S,
        headers={"X-Session-ID": session},
        trust_env=False,
    ) as client:
        out["first_recall_ms"] = round(await recall_ms(client, session, queries[0]), 1)
        out["second_recall_ms"] = round(await recall_ms(client, session, queries[1]), 1)
        out["rss_after_first_recall_mb"] = server.memory_mb().get("VmRSS")
        out["recall"] = await recall_phase(client, QueryPool(queries[2:]), c1, c8)
    out["peak_rss_mb"] = server.memory_mb().get("VmHWM")
    return out


def as_after_a_crash(data_dir: Path) -> None:
    """Clear the close mark, as a crash leaves it: the next start compares every id (with
    the vector index flushed, so a real crash's start, which also replays logs, is slower)."""
    with contextlib.closing(sqlite3.connect(data_dir / "ww.sqlite3")) as db, db:
        db.execute("UPDATE meta SET value = 'open' WHERE key = ?", (CLOSE_MARK_KEY,))


def closed_cleanly(data_dir: Path) -> bool:
    """Whether the last process marked the stores closed cleanly (a stop that timed out and
    was killed did not, and the next start compared every id)."""
    with contextlib.closing(sqlite3.connect(data_dir / "ww.sqlite3")) as db:
        row = db.execute("SELECT value FROM meta WHERE key = ?", (CLOSE_MARK_KEY,)).fetchone()
    return row is not None and row[0] == CLOSED


def run(args: argparse.Namespace) -> dict[str, Any]:
    bodies = generate_memories(args.pool, seed=args.seed)
    cache = (
        Path(args.pool_cache or tempfile.gettempdir())
        / f"ww-scale-pool-{args.pool}-{args.seed}.npy"
    )
    vectors, rate, model_id = pool_vectors([b["content"] for b in bodies], cache)
    tmp = Path(args.data_dir) if args.data_dir else Path(tempfile.mkdtemp(prefix="ww-scale-"))
    data_dir, workdir = tmp / "data", tmp / "cwd"
    workdir.mkdir(parents=True, exist_ok=True)
    result: dict[str, Any] = {"layout": args.layout, "pool": args.pool}
    try:
        if args.serve_only:  # the ingest figures of the run that filled ``--data-dir``
            previous = json.loads((Path(args.out) / f"scale-{args.layout}.json").read_text())
            result.update({k: v for k, v in previous["scale"].items() if k in _INGEST_FIELDS})
        else:
            result.update(
                asyncio.run(
                    ingest(
                        data_dir, bodies, PoolEmbedder(vectors, model_id), args.total, args.layout
                    )
                )
            )
        result["raw_embed_batched_per_s"] = round(rate, 1)
        result["projected_ingest_s"] = round(result["store_ingest_s"] + args.total / rate, 1)
        result["data_dir_mb"] = round(
            sum(f.stat().st_blocks * 512 for f in data_dir.rglob("*") if f.is_file()) / 2**20, 1
        )
        server = Server(data_dir, workdir, tmp / "server.log")
        try:
            as_after_a_crash(data_dir)
            result["startup_first_s"] = round(server.start(), 2)
            server.stop()
            result["clean_stop"] = closed_cleanly(data_dir)
            since = len(server.log_text())
            result["startup_s"] = round(server.start(), 2)
            # The first recall of a session waits for its keyword index unless the start-up
            # task has loaded it: measured once that task says it is done. Recall is timed
            # after the background id comparison too, which holds store threads for seconds.
            result["keyword_warm_s"] = wait_for_log(server, WARM_LOG, since)
            if result["clean_stop"]:
                result["ids_compared_s"] = wait_for_log(server, IDS_LOG, since)
            queries = generate_queries(args.c1_queries + args.c8_queries + 12, seed=args.seed + 1)
            result.update(
                asyncio.run(
                    serve(
                        server,
                        sessions_for(args.layout)[0],
                        queries,
                        args.c1_queries,
                        args.c8_queries,
                    )
                )
            )
        finally:
            server.stop()
    finally:
        if not (args.keep_data or args.data_dir):
            shutil.rmtree(tmp, ignore_errors=True)
    return {"scale": result, "info": {"versions": versions(), "total": args.total}}


_INGEST_FIELDS = (
    "memories",
    "sessions",
    "store_ingest_s",
    "store_ingest_per_s",
    "index_build_s",
    "index_build_rounds",
    "unindexed_after_build",
    "ingest_peak_rss_mb",
    "data_dir_mb",
)

TARGETS = (  # (what, field path, limit, lower is better)
    ("RSS <= 4 GB", ("peak_rss_mb",), 4096.0),
    ("start-up <= 10 s", ("startup_s",), 10.0),
    ("recall p95 <= 50 ms at c=1", ("recall", "c1", "p95"), 50.0),
)


def markdown(report: dict[str, Any]) -> str:
    r = report["scale"]
    lines = [
        f"# Scale: {r['memories']:,} memories, {r['sessions']} session(s)",
        "",
        "| figure | value |",
        "|---|---|",
    ]
    for key in (
        "store_ingest_s",
        "store_ingest_per_s",
        "raw_embed_batched_per_s",
        "projected_ingest_s",
        "index_build_s",
        "data_dir_mb",
        "ingest_peak_rss_mb",
        "startup_first_s",
        "clean_stop",
        "startup_s",
        "rss_after_start_mb",
        "keyword_warm_s",
        "ids_compared_s",
        "first_recall_ms",
        "second_recall_ms",
        "rss_after_first_recall_mb",
        "peak_rss_mb",
    ):
        lines.append(f"| {key} | {r.get(key)} |")
    rec = r["recall"]
    lines += [
        f"| recall c=1 p50 / p95 ms | {rec['c1']['p50']} / {rec['c1']['p95']} |",
        f"| recall c=8 p50 / p95 ms | {rec['c8']['p50']} / {rec['c8']['p95']} |",
        f"| recalls/s at c=8 | {rec['c8_per_s']} |",
        "",
        "| target | figure | met |",
        "|---|---|---|",
    ]
    for what, path, limit in TARGETS:
        value: Any = r
        for key in path:
            value = value[key]
        lines.append(f"| {what} | {value} | {'yes' if value <= limit else 'no'} |")
    return "\n".join(lines) + "\n"


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--total", type=int, default=1_000_000, help="memories in all")
    p.add_argument("--layout", choices=("one", "ten"), default="one", help="one session or ten")
    p.add_argument("--pool", type=int, default=20_000, help="distinct texts embedded for real")
    p.add_argument("--pool-cache", default=None, help="folder for the pool's vectors")
    p.add_argument("--c1-queries", type=int, default=200)
    p.add_argument("--c8-queries", type=int, default=400)
    p.add_argument("--seed", type=int, default=20240101)
    p.add_argument("--out", default=str(DEFAULT_OUT))
    p.add_argument("--data-dir", default=None, help="work (and keep the data) here")
    p.add_argument("--keep-data", action="store_true")
    p.add_argument(
        "--serve-only",
        action="store_true",
        help="measure the server again on a kept --data-dir (ingest figures from --out)",
    )
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    report = run(args)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"scale-{args.layout}.json").write_text(json.dumps(report, indent=2) + "\n")
    (out / f"scale-{args.layout}.md").write_text(markdown(report))
    print(json.dumps(report["scale"], indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
