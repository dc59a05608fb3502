"""Reference retrievers over the same turns: BM25, SQLite FTS5 bm25, flat cosine and RRF.

Every retriever ranks the turns of one conversation and returns their dialogue ids, best
first; the cosine retriever uses World Weaver's own embedder, called once per text.
"""

from __future__ import annotations

import re
import sqlite3
import time
from collections.abc import Callable, Sequence

import numpy as np
import numpy.typing as npt
from rank_bm25 import BM25Okapi

from bench.locomo_data import Conversation, Dataset
from ww.storage.query_terms import keyword_terms

__all__ = [
    "BASELINES",
    "EmbedFn",
    "Rankings",
    "bm25_rank",
    "cosine_rank",
    "fts5_rank",
    "rrf",
    "run_baselines",
    "tokenize",
]

BASELINES = ("bm25", "fts5", "cosine", "rrf")
FTS5_TOKENIZER = "porter unicode61 remove_diacritics 2"
RRF_K = 60
_WORD = re.compile(r"\w+")

EmbedFn = Callable[[Sequence[str]], npt.NDArray[np.float32]]
# system -> question id -> ranked dialogue ids
Rankings = dict[str, dict[str, list[str]]]


def tokenize(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def _order(scores: npt.NDArray[np.float64], k: int) -> list[int]:
    # Stable: equal scores keep conversation order.
    return [int(i) for i in np.argsort(-scores, kind="stable")[:k]]


def bm25_rank(conv: Conversation, k: int) -> dict[str, list[str]]:
    ids = [t.dia_id for t in conv.turns]
    index = BM25Okapi([tokenize(t.content) for t in conv.turns])
    out: dict[str, list[str]] = {}
    for q in conv.questions:
        scores = np.asarray(index.get_scores(tokenize(q.text)), dtype=np.float64)
        out[q.qid] = [ids[i] for i in _order(scores, k)]
    return out


def fts5_rank(conv: Conversation, k: int) -> dict[str, list[str]]:
    db = sqlite3.connect(":memory:")
    try:
        db.execute(f"CREATE VIRTUAL TABLE t USING fts5(content, tokenize='{FTS5_TOKENIZER}')")
        db.executemany(
            "INSERT INTO t (rowid, content) VALUES (?, ?)",
            [(i + 1, t.content) for i, t in enumerate(conv.turns)],
        )
        out: dict[str, list[str]] = {}
        for q in conv.questions:
            terms = keyword_terms(q.text)
            if not terms:
                out[q.qid] = []
                continue
            match = " OR ".join(f'"{term}"' for term in terms)
            rows = db.execute(
                "SELECT rowid FROM t WHERE t MATCH ? ORDER BY bm25(t), rowid LIMIT ?", (match, k)
            ).fetchall()
            out[q.qid] = [conv.turns[int(r[0]) - 1].dia_id for r in rows]
        return out
    finally:
        db.close()


def cosine_rank(
    conv: Conversation, k: int, turn_vectors: npt.NDArray[np.float32], embed: EmbedFn
) -> dict[str, list[str]]:
    ids = [t.dia_id for t in conv.turns]
    queries = embed([q.text for q in conv.questions]) if conv.questions else None
    out: dict[str, list[str]] = {}
    for j, q in enumerate(conv.questions):
        assert queries is not None
        scores = (turn_vectors @ queries[j]).astype(np.float64)
        out[q.qid] = [ids[i] for i in _order(scores, k)]
    return out


def rrf(rankings: Sequence[Sequence[str]], k: int, c: int = RRF_K) -> list[str]:
    """Reciprocal-rank fusion: score(d) = sum over lists of 1 / (c + rank), rank from 1."""
    score: dict[str, float] = {}
    first_seen: dict[str, int] = {}
    for ranking in rankings:
        for rank, ident in enumerate(ranking, start=1):
            score[ident] = score.get(ident, 0.0) + 1.0 / (c + rank)
            first_seen.setdefault(ident, len(first_seen))
    return sorted(score, key=lambda d: (-score[d], first_seen[d]))[:k]


def run_baselines(data: Dataset, embed: EmbedFn, k: int = 50) -> tuple[Rankings, dict[str, float]]:
    """Rank every question with each baseline; returns rankings and seconds per system."""
    out: Rankings = {name: {} for name in BASELINES}
    secs = dict.fromkeys(BASELINES, 0.0)
    secs["embed_turns"] = 0.0
    for conv in data.conversations:
        n = len(conv.turns)
        t0 = time.perf_counter()
        bm25_full = bm25_rank(conv, n)
        t1 = time.perf_counter()
        out["fts5"].update(fts5_rank(conv, k))
        t2 = time.perf_counter()
        vectors = embed([t.content for t in conv.turns])
        t3 = time.perf_counter()
        cos_full = cosine_rank(conv, n, vectors, embed)
        t4 = time.perf_counter()
        for q in conv.questions:
            out["bm25"][q.qid] = bm25_full[q.qid][:k]
            out["cosine"][q.qid] = cos_full[q.qid][:k]
            out["rrf"][q.qid] = rrf([bm25_full[q.qid], cos_full[q.qid]], k)
        t5 = time.perf_counter()
        secs["bm25"] += t1 - t0
        secs["fts5"] += t2 - t1
        secs["embed_turns"] += t3 - t2
        secs["cosine"] += t4 - t3
        secs["rrf"] += t5 - t4
    return out, secs
