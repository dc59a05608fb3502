"""Where recall and ingest time goes inside the engine (no HTTP), on synthetic data.

    python bench/latency_profile.py [--size 30000] [--queries 100] [--optimise] [--cprofile]
                                    [--data-dir DIR]

Ingests ``--size`` memories with a stub embedder (hash-seeded random unit vectors under the
vendored model's id, so ingest costs only the stores), then reopens the data directory with
the real embedder and times each recall stage on its own: query embedding through the
service and bare, then each later stage of ``recall_episodes`` as the engine runs it (dense
search, keyword search, ``candidate_rows``, the ``within`` search for keyword-only
candidates, ``Fusion`` + ``contenders()``, ``neighbours``, ``rank()``, fetching the hits), and
the whole ``recall_episodes``. Also times
``reconcile()`` (which maintenance runs every 30 s and start-up runs once), the non-embedding
part of a 500-episode ``create_episodes``, and optionally the HNSW build. A diagnostic
helper for bench/latency.py, not a test.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import pstats
import sys
import tempfile
import time
import zlib
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
    sys.path.insert(1, str(ROOT / "src"))

import numpy as np  # noqa: E402
import numpy.typing as npt  # noqa: E402

from bench.synthetic import generate_memories, generate_queries  # noqa: E402
from ww.config import Settings  # noqa: E402
from ww.embedding import VENDORED_MODEL, EmbeddingService, load_embedder  # noqa: E402
from ww.engine import MemoryEngine, build_engine  # noqa: E402
from ww.engine.recall import PRESETS, Fusion, Preset, query_words  # noqa: E402
from ww.models import EpisodeCreate, EpisodeFilter  # noqa: E402
from ww.storage.ports import Vector  # noqa: E402

__all__ = ["main", "recall_stages"]

SESSION = "profile"


class StubEmbedder:
    """Deterministic random unit vectors; claims the vendored model so the data dir reopens."""

    model_id = VENDORED_MODEL
    dimension = 384

    def embed(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        out = np.empty((len(texts), self.dimension), dtype=np.float32)
        for i, t in enumerate(texts):
            v = np.random.default_rng(zlib.crc32(t.encode())).standard_normal(self.dimension)
            out[i] = v / np.linalg.norm(v)
        return out


def ms_stats(times: Sequence[float]) -> str:
    a = np.asarray(times) * 1000
    p50, p95, p99 = np.percentile(a, [50, 95, 99])
    return f"p50 {p50:7.2f}  p95 {p95:7.2f}  p99 {p99:7.2f}  ms (n={len(a)})"


async def timed(
    fn: Callable[[str], Awaitable[Any]], queries: Sequence[str]
) -> tuple[list[float], list[Any]]:
    times, results = [], []
    for q in queries:
        t0 = time.perf_counter()
        results.append(await fn(q))
        times.append(time.perf_counter() - t0)
    return times, results


def profiled(prof: cProfile.Profile | None, label: str, limit: int = 25) -> None:
    if prof is None:
        return
    s = io.StringIO()
    pstats.Stats(prof, stream=s).sort_stats("cumulative").print_stats(limit)
    print(f"\n--- cProfile (event-loop thread only): {label} ---\n{s.getvalue()}")


async def ingest_stub(settings: Settings, size: int, want_profile: bool) -> None:
    stub = EmbeddingService(StubEmbedder(), cache_size=0, batch_size=32)
    engine = build_engine(settings, embedder=stub)
    await engine.open()
    items = [EpisodeCreate.model_validate(m) for m in generate_memories(size, seed=7)]
    t0 = time.perf_counter()
    batch_times = []
    prof = None
    for start in range(0, size, 500):
        profile_this = want_profile and start == 2000
        if profile_this:
            prof = cProfile.Profile()
            prof.enable()
        b0 = time.perf_counter()
        await engine.create_episodes(SESSION, items[start : start + 500])
        batch_times.append(time.perf_counter() - b0)
        if profile_this and prof is not None:
            prof.disable()
    total = time.perf_counter() - t0
    print(
        f"ingest with stub embedder: {size} in {total:.1f}s = {size / total:.0f}/s; "
        f"per 500-batch {ms_stats(batch_times)}"
    )
    profiled(prof, "one create_episodes(500) with the stub embedder")
    t0 = time.perf_counter()
    await engine.reconcile()
    print(f"reconcile() over {size} (maintenance every 30 s): {time.perf_counter() - t0:.2f}s")
    await engine.close()


async def recall_stages(
    engine: MemoryEngine, queries: Sequence[str], vectors: dict[str, Vector]
) -> dict[str, list[float]]:
    """Each stage of ``MemoryEngine.recall_episodes`` after the embedding, timed on its own.

    Mirrors the engine: dense and keyword search (concurrent there, sequential here), the
    scoring rows of the union, the in-index cosine of keyword-only candidates, fusion's base
    scores and contenders, the contenders' timeline neighbours, the final rank and fetching
    the winning episodes.
    """
    stages: dict[str, list[float]] = {}
    flt = EpisodeFilter()
    limit = 10
    n = max(engine.candidates, limit)
    extra: list[int] = []
    sizes: list[int] = []

    def lap(name: str, t0: float) -> float:
        now = time.perf_counter()
        stages.setdefault(name, []).append(now - t0)
        return now

    for q in queries:
        qv = vectors[q]
        t = time.perf_counter()
        dense = await engine.vectors.search(SESSION, qv, flt, n)
        t = lap(f"dense search (top {n})", t)
        keyword = await engine.records.keyword_search(SESSION, q, flt, n)
        t = lap("keyword search", t)
        ids = list(dict.fromkeys([s.id for s in dense] + [s.id for s in keyword]))
        rows = await engine.records.candidate_rows(SESSION, ids, flt)
        t = lap("candidate_rows", t)
        cosine = {s.id: s.score for s in dense}
        keyword_only = [s.id for s in keyword if s.id not in cosine]
        if keyword_only:
            for s in await engine.vectors.search(
                SESSION, qv, flt, len(keyword_only), within=keyword_only
            ):
                cosine[s.id] = s.score
        t = lap("search within keyword-only", t)
        learned = await engine.recall_learning.features(SESSION, qv, list(rows), engine.clock())
        t = lap("learned features", t)
        fusion = Fusion(
            candidates=rows,
            cosine=cosine,
            keyword=keyword,
            weights=PRESETS[Preset.BALANCED],
            fsrs=engine.fsrs if engine.flags.fsrs else None,
            now=engine.clock(),
            words=query_words(q),
            learned=learned,
            temporal=engine.flags.spreading_activation,
        )
        contenders = [rows[i] for i in fusion.contenders(limit)]
        t = lap("Fusion + contenders", t)
        neighbours = await engine.records.neighbours(SESSION, contenders)
        t = lap("neighbours (contenders)", t)
        scored = fusion.rank(limit, neighbours)
        t = lap("Fusion.rank", t)
        await engine.records.get_episodes(SESSION, [s.id for s in scored])
        lap("get_episodes (hits)", t)
        extra.append(len(keyword_only))
        sizes.append(len(rows))
    print(
        f"candidates per query: mean {np.mean(sizes):.0f} rows, {np.mean(extra):.0f} keyword-only"
    )
    return stages


async def profile_recall(settings: Settings, args: argparse.Namespace) -> None:
    t0 = time.perf_counter()
    engine: MemoryEngine = build_engine(settings)
    t_build = time.perf_counter() - t0
    await engine.open()
    print(
        f"open: build_engine {t_build:.2f}s, engine.open (stores + reconcile) "
        f"{time.perf_counter() - t0 - t_build:.2f}s"
    )
    queries = generate_queries(4 * args.queries + 20, seed=99)
    warm, qs = queries[:20], queries[20:]
    flt = EpisodeFilter()
    n = max(engine.candidates, 10)
    for q in warm:
        await engine.recall_episodes(SESSION, q, learn=False)

    bare = load_embedder(settings)
    bare_t, _ = await timed(lambda q: asyncio.to_thread(bare.embed, [q]), qs[: args.queries])
    print(f"embed bare (to_thread)      {ms_stats(bare_t)}")
    svc_t, vecs = await timed(engine.embedder.embed_one, qs[: args.queries])
    print(f"embed_one via service       {ms_stats(svc_t)}")
    qv = dict(zip(qs[: args.queries], vecs, strict=True))
    stages = await recall_stages(engine, qs[: args.queries], qv)
    for name, times in stages.items():
        print(f"{name:<28}{ms_stats(times)}")
    print(f"(stage medians sum to {sum(np.median(t) for t in stages.values()) * 1000:.2f} ms)")
    prof = cProfile.Profile() if args.cprofile else None
    if prof:
        prof.enable()
    rec_t, _ = await timed(
        lambda q: engine.recall_episodes(SESSION, q, learn=False),
        qs[args.queries : 2 * args.queries],
    )
    if prof:
        prof.disable()
    print(f"recall_episodes (whole)     {ms_stats(rec_t)}")
    profiled(prof, f"{args.queries} recall_episodes")

    # Non-embedding share of a 500-batch ingest with the real embedder.
    items = [EpisodeCreate.model_validate(m) for m in generate_memories(500, seed=12345)]
    t0 = time.perf_counter()
    await engine.embedder.embed_many([i.content for i in items])
    t_embed = time.perf_counter() - t0
    t0 = time.perf_counter()
    await engine.create_episodes(SESSION, items)  # embeddings now cached: stores only
    t_rest = time.perf_counter() - t0
    print(
        f"500-batch: embedding {t_embed:.2f}s, everything else {t_rest:.3f}s "
        f"({100 * t_rest / (t_embed + t_rest):.1f}% of the batch)"
    )

    if args.optimise:
        t0 = time.perf_counter()
        await engine.vectors.optimize()
        print(f"optimize() (HNSW build, holds the GIL): {time.perf_counter() - t0:.1f}s")
        dense_t2, _ = await timed(
            lambda q: engine.vectors.search(SESSION, qv[q], flt, n), qs[: args.queries]
        )
        print(f"dense search after optimise {ms_stats(dense_t2)}")
        rec_t2, _ = await timed(
            lambda q: engine.recall_episodes(SESSION, q, learn=False),
            qs[2 * args.queries : 3 * args.queries],
        )
        print(f"recall_episodes after opt.  {ms_stats(rec_t2)}")
    t0 = time.perf_counter()
    await engine.reconcile()
    print(f"reconcile() with real engine: {time.perf_counter() - t0:.2f}s")
    await engine.close()


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--size", type=int, default=30_000)
    p.add_argument("--queries", type=int, default=100)
    p.add_argument("--optimise", action="store_true", help="also time the HNSW build")
    p.add_argument("--cprofile", action="store_true", help="cProfile ingest and recall")
    p.add_argument(
        "--data-dir",
        type=Path,
        help="reuse a directory a previous run filled (its session must be 'profile'); "
        "skips the ingest, so --size is ignored",
    )
    args = p.parse_args()
    if args.data_dir is not None:
        asyncio.run(profile_recall(Settings(data_dir=args.data_dir), args))
        return 0
    with tempfile.TemporaryDirectory(prefix="ww-profile-") as tmp:
        settings = Settings(data_dir=Path(tmp))
        asyncio.run(ingest_stub(settings, args.size, args.cprofile))
        asyncio.run(profile_recall(settings, args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
