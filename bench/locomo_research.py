"""Research only: how recall@10 on LoCoMo moves with WW's fusion, without changing src/.

    python bench/locomo_research.py [--data PATH] [--limit-conversations N]

Ingests once into a fresh engine, then recalls every question (learn=false) under variants of
the fusion step, patched in place of ``ww.engine.memory.fuse``: candidate count, weights,
score normalisation, reciprocal-rank fusion, neighbouring turns and speaker matching. Nothing
here knows LoCoMo's speakers or ids: neighbours come from timestamp order within a session
and speakers from the episodes' own ``speaker`` field.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any
from uuid import UUID

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
    sys.path.insert(1, str(ROOT / "src"))

import ww.engine.memory as memory_mod  # noqa: E402
from bench.locomo import DEFAULT_DATA  # noqa: E402
from bench.locomo_data import Dataset, load_locomo  # noqa: E402
from bench.locomo_report import summarise  # noqa: E402
from bench.locomo_ww import MemoEmbedder, episode_items  # noqa: E402
from bench.metrics import GROUPS  # noqa: E402
from ww.config import Settings  # noqa: E402
from ww.embedding import VENDORED_MODEL, EmbeddingService, OnnxEmbedder, vendored_model_dir  # noqa: E402
from ww.engine import MemoryEngine, build_engine  # noqa: E402
from ww.engine.dynamics import Fsrs  # noqa: E402
from ww.engine.recall import PRESETS, Preset, Scored, Weights, fuse  # noqa: E402
from ww.models import Episode, EpisodeFilter, ScoreParts  # noqa: E402
from ww.storage.ports import ScoredId, Vector  # noqa: E402

__all__ = ["Variant", "main"]

_WORD = re.compile(r"\w+")


@dataclass(frozen=True, slots=True)
class Variant:
    name: str
    semantic: float = 0.60
    keyword: float = 0.25
    candidates: int = 100
    mode: str = "weighted"  # weighted | rrf | stock
    kw_norm: str = "max"  # max | minmax | rank
    sem_norm: str = "raw"  # raw | minmax
    rrf_k: int = 60
    neighbour: float = 0.0  # share of the best adjacent turn's score added to a turn
    speaker: float = 0.0  # bonus when the turn's speaker is named in the query


def _norm(values: Mapping[UUID, float], how: str) -> dict[UUID, float]:
    if not values:
        return {}
    if how == "rank":
        order = sorted(values, key=lambda i: -values[i])
        return {ident: 1.0 / (1.0 + r) for r, ident in enumerate(order)}
    hi = max(values.values())
    if how == "minmax":
        lo = min(values.values())
        span = hi - lo
        return {i: (v - lo) / span if span > 0 else 1.0 for i, v in values.items()}
    return {i: (v / hi if hi > 0 else 0.0) for i, v in values.items()}


def _ranks(values: Mapping[UUID, float]) -> dict[UUID, int]:
    return {i: r for r, i in enumerate(sorted(values, key=lambda i: (-values[i], str(i))), 1)}


class Fuser:
    """Stands in for ``recall.fuse`` with the knobs of one :class:`Variant`."""

    def __init__(self, neighbours: Mapping[UUID, tuple[UUID, ...]]) -> None:
        self.variant = Variant("stock", mode="stock")
        self.neighbours = neighbours
        self.query = ""

    def __call__(
        self,
        *,
        episodes: Mapping[UUID, Episode],
        dense: Sequence[ScoredId],
        keyword: Sequence[ScoredId],
        extra_vectors: Mapping[UUID, Vector],
        query_vector: Vector,
        weights: Weights,
        fsrs: Fsrs,
        now: datetime,
        limit: int,
    ) -> list[Scored]:
        v = self.variant
        if v.mode == "stock":
            return fuse(
                episodes=episodes,
                dense=dense,
                keyword=keyword,
                extra_vectors=extra_vectors,
                query_vector=query_vector,
                weights=weights,
                fsrs=fsrs,
                now=now,
                limit=limit,
            )
        cosine = {s.id: s.score for s in dense}
        for ident, vec in extra_vectors.items():
            cosine.setdefault(ident, float(np.dot(vec, query_vector)))
        cosine = {i: c for i, c in cosine.items() if i in episodes}
        kw_raw = {s.id: s.score for s in keyword if s.id in episodes}
        if v.mode == "rrf":
            rs, rk = _ranks(cosine), _ranks(kw_raw)
            base = {
                i: v.semantic / (v.rrf_k + rs[i]) * (i in rs)
                + v.keyword / (v.rrf_k + rk.get(i, 0)) * (i in rk)
                for i in episodes
            }
        else:
            sem = (
                _norm(cosine, "minmax")
                if v.sem_norm == "minmax"
                else {i: min(1.0, max(0.0, c)) for i, c in cosine.items()}
            )
            kw = _norm(kw_raw, v.kw_norm)
            base = {i: v.semantic * sem.get(i, 0.0) + v.keyword * kw.get(i, 0.0) for i in episodes}
        words = set(_WORD.findall(self.query.lower()))
        scored: list[Scored] = []
        for ident, ep in episodes.items():
            s = base[ident]
            if v.neighbour:
                s += v.neighbour * max(
                    (base.get(n, 0.0) for n in self.neighbours.get(ident, ())), default=0.0
                )
            if v.speaker and ep.speaker and ep.speaker.lower() in words:
                s += v.speaker * (max(base.values()) if base else 0.0)
            scored.append(Scored(ep, s, ScoreParts()))
        scored.sort(key=lambda x: (-x.score, str(x.episode.id)))
        return scored[:limit]


def variants() -> list[Variant]:
    w = Variant("weighted copy of stock")
    out = [Variant("stock balanced", mode="stock"), w]
    out += [replace(w, name=f"candidates {n}", candidates=n) for n in (50, 200, 400)]
    for s, k in ((0.7, 0.15), (0.5, 0.35), (0.45, 0.4), (0.4, 0.45), (0.3, 0.55), (0.2, 0.65)):
        out.append(replace(w, name=f"weights sem {s} kw {k}", semantic=s, keyword=k))
    out += [
        replace(w, name="kw min-max", kw_norm="minmax"),
        replace(w, name="kw rank 1/(1+r)", kw_norm="rank"),
        replace(w, name="sem min-max", sem_norm="minmax"),
        replace(w, name="sem+kw min-max", sem_norm="minmax", kw_norm="minmax"),
        replace(
            w,
            name="sem+kw min-max 0.5/0.5",
            sem_norm="minmax",
            kw_norm="minmax",
            semantic=0.5,
            keyword=0.5,
        ),
    ]
    r = Variant("rrf k=60 1:1", mode="rrf", semantic=1.0, keyword=1.0)
    out += [
        r,
        replace(r, name="rrf k=60 sem 1 kw 1.5", keyword=1.5),
        replace(r, name="rrf k=60 sem 1 kw 2", keyword=2.0),
        replace(r, name="rrf k=20 sem 1 kw 1.5", rrf_k=20, keyword=1.5),
    ]
    for nb in (0.1, 0.2, 0.3):
        out.append(replace(w, name=f"neighbour {nb}", neighbour=nb))
    for sp in (0.05, 0.1):
        out.append(replace(w, name=f"speaker {sp}", speaker=sp))
    mm = replace(w, kw_norm="minmax")
    out += [
        replace(mm, name="kw min-max + speaker 0.1", speaker=0.1),
        replace(mm, name="kw min-max + speaker 0.1 + nb 0.1", speaker=0.1, neighbour=0.1),
        replace(mm, name="kw mm + sp 0.1 + 0.5/0.35", speaker=0.1, semantic=0.5, keyword=0.35),
        replace(
            mm,
            name="kw mm + sp 0.1 + 0.5/0.35 + c200",
            speaker=0.1,
            semantic=0.5,
            keyword=0.35,
            candidates=200,
        ),
        replace(mm, name="kw mm + sp 0.1 + nb 0.05", speaker=0.1, neighbour=0.05),
    ]
    return out


async def _neighbours(engine: MemoryEngine, data: Dataset) -> dict[UUID, tuple[UUID, ...]]:
    out: dict[UUID, tuple[UUID, ...]] = {}
    for conv in data.conversations:
        items: list[Episode] = []
        cursor: str | None = None
        while True:
            page = await engine.list_episodes(conv.session_id(), EpisodeFilter(), 500, cursor)
            items += page.items
            cursor = page.next_cursor
            if not cursor:
                break
        items.sort(key=lambda e: (e.timestamp, str(e.id)))
        for i, ep in enumerate(items):
            out[ep.id] = tuple(x.id for x in items[max(0, i - 1) : i + 2] if x.id != ep.id)
    return out


@dataclass(frozen=True, slots=True)
class Captured:
    """One recall's fusion inputs at the largest candidate count, replayed per variant."""

    qid: str
    query: str
    episodes: Mapping[UUID, Episode]
    dense: Sequence[ScoredId]
    keyword: Sequence[ScoredId]
    cosine: Mapping[UUID, float]
    query_vector: Vector
    now: datetime


async def _capture(data: Dataset, n: int) -> tuple[list[Captured], dict[UUID, tuple[UUID, ...]]]:
    embedder = MemoEmbedder(OnnxEmbedder(vendored_model_dir(), model_id=VENDORED_MODEL))
    captured: list[Captured] = []
    current: dict[str, str] = {}

    def grab(**kw: Any) -> list[Scored]:
        cosine = {s.id: s.score for s in kw["dense"]}
        for ident, vec in kw["extra_vectors"].items():
            cosine.setdefault(ident, float(np.dot(vec, kw["query_vector"])))
        captured.append(
            Captured(
                current["qid"],
                current["query"],
                dict(kw["episodes"]),
                list(kw["dense"]),
                list(kw["keyword"]),
                cosine,
                kw["query_vector"],
                kw["now"],
            )
        )
        return []

    with tempfile.TemporaryDirectory(prefix="ww-locomo-r-") as tmp:
        settings = Settings(data_dir=Path(tmp), recall_candidates=n)
        service = EmbeddingService(embedder, cache_size=100_000, batch_size=32)
        engine = build_engine(settings, embedder=service)
        await engine.open()
        for conv in data.conversations:
            await engine.create_episodes(conv.session_id(), episode_items(conv.turns))
        neighbours = await _neighbours(engine, data)
        memory_mod.fuse = grab  # type: ignore[assignment]
        for conv in data.conversations:
            for q in conv.questions:
                current.update(qid=q.qid, query=q.text)
                await engine.recall_episodes(conv.session_id(), q.text, limit=50, learn=False)
        await engine.close()
    return captured, neighbours


def _replay(fuser: Fuser, c: Captured, fsrs: Fsrs) -> list[str]:
    v = fuser.variant
    dense, keyword = c.dense[: v.candidates], c.keyword[: v.candidates]
    keep = {s.id for s in dense} | {s.id for s in keyword}
    dense_ids = {s.id for s in dense}
    extra = {i: c.cosine[i] for i in keep - dense_ids if i in c.cosine}
    # The query vector is unit length, so a one-hot "vector" scaled by the cosine replays it.
    qv = np.zeros(1, dtype=np.float32)
    qv[0] = 1.0
    fuser.query = c.query
    scored = fuser(
        episodes={i: e for i, e in c.episodes.items() if i in keep},
        dense=dense,
        keyword=keyword,
        extra_vectors={i: np.asarray([x], dtype=np.float32) for i, x in extra.items()},
        query_vector=qv,
        weights=PRESETS[Preset.BALANCED],
        fsrs=fsrs,
        now=c.now,
        limit=50,
    )
    return [s.episode.external_id for s in scored if s.episode.external_id]


def run(data: Dataset, chosen: Sequence[Variant]) -> list[dict[str, Any]]:
    most = max(v.candidates for v in chosen)
    captured, neighbours = asyncio.run(_capture(data, most))
    fuser = Fuser(neighbours)
    fsrs = Fsrs()
    results: list[dict[str, Any]] = []
    for v in chosen:
        fuser.variant = v
        rankings = {c.qid: _replay(fuser, c, fsrs) for c in captured}
        s = summarise(data, rankings)
        row = {"variant": v.name, **{g: s[g].get("recall@10") for g in GROUPS}}
        row["mrr"] = s["all"].get("mrr")
        results.append(row)
        cells = " ".join(f"{row[g]:.3f}" for g in GROUPS)
        print(f"{v.name:<34} {cells}  mrr {row['mrr']:.3f}", flush=True)
    return results


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--data", default=str(DEFAULT_DATA))
    p.add_argument("--limit-conversations", type=int, default=None)
    args = p.parse_args(argv)
    data = load_locomo(Path(args.data), args.limit_conversations)
    print(f"{'variant':<34} " + " ".join(f"{g:>5}" for g in GROUPS))
    run(data, variants())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
