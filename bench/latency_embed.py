"""Batched embedding and long-memory ingest for bench/latency.py (issue 17's ingest targets).

``raw_embed_batched_per_s`` is the model's best batched throughput: texts sorted by length
(characters), 32 per model call, the best of a few passes. ``long_ingest_per_s`` is batch
ingest of long memories through the API, in their own session so the recall measurements of
the size are not disturbed.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Sequence
from typing import Any

from bench.bench_server import Server, log
from bench.latency_load import ingest
from ww.embedding import OnnxEmbedder

__all__ = [
    "BATCH",
    "long_ingest",
    "long_memories",
    "parts_per_memory",
    "raw_embed_batched_rate",
]

BATCH = 32


def raw_embed_batched_rate(embedder: OnnxEmbedder, texts: Sequence[str], passes: int = 2) -> float:
    """Texts per second, batch 32 sorted by length; the best of ``passes`` after a warm-up."""
    ordered = sorted(texts, key=len)
    embedder.embed(ordered[:BATCH])
    best = 0.0
    for _ in range(passes):
        t0 = time.perf_counter()
        for start in range(0, len(ordered), BATCH):
            embedder.embed(ordered[start : start + BATCH])
        best = max(best, len(ordered) / (time.perf_counter() - t0))
    return best


def long_memories(
    memories: Sequence[dict[str, Any]], count: int, chars: int
) -> list[dict[str, Any]]:
    """``count`` memories of about ``chars`` characters, each the next short memories joined."""
    out: list[dict[str, Any]] = []
    it = itertools.cycle([m["content"] for m in memories])
    for _ in range(count):
        parts: list[str] = []
        size = 0
        while size < chars:
            text = next(it)
            parts.append(text)
            size += len(text) + 1
        out.append({"content": " ".join(parts)[:chars]})
    return out


def parts_per_memory(embedder: OnnxEmbedder, memories: Sequence[dict[str, Any]]) -> float:
    """Mean further vectors (parts) per memory: its windows after the first."""
    if not memories:
        return 0.0
    return sum(len(embedder.windows(m["content"])) - 1 for m in memories) / len(memories)


def long_ingest(
    server: Server,
    session: str,
    memories: Sequence[dict[str, Any]],
    embedder: OnnxEmbedder,
    short_chars_per_s: float,
) -> dict[str, Any]:
    """Ingest long memories through ``POST /episodes/batch``, 8 per request, 2 clients.
    ``long_cost_per_char_ratio``: what a character of these costs against one of the short
    memories ingested at ``short_chars_per_s`` in the same run."""
    secs, _ = asyncio.run(ingest(server.base_url, session, memories, 8, 2))
    chars = sum(len(m["content"]) for m in memories)
    result = {
        "long_ingest_count": len(memories),
        "long_ingest_chars": round(chars / len(memories)),
        "long_ingest_per_s": round(len(memories) / secs, 2),
        "long_ingest_chars_per_s": round(chars / secs),
        "long_parts_per_memory": round(parts_per_memory(embedder, memories), 1),
        "long_cost_per_char_ratio": round(short_chars_per_s / (chars / secs), 2),
    }
    rate, char_rate = result["long_ingest_per_s"], result["long_ingest_chars_per_s"]
    log(
        f"  long ingest {rate}/s ({char_rate} chars/s, {result['long_parts_per_memory']} parts "
        f"each, {result['long_cost_per_char_ratio']}x a short memory's cost per character)"
    )
    return result
