"""bench/latency_embed.py: the long memories it ingests and the batched raw rate."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from bench.latency_embed import long_memories, raw_embed_batched_rate
from bench.synthetic import generate_memories
from ww.api.schemas import BatchCreate


def test_long_memories_are_valid_bodies_of_the_asked_length() -> None:
    short = generate_memories(40, seed=7)  # fewer than needed: the texts are reused
    longs = long_memories(short, count=5, chars=3000)
    assert len(longs) == 5
    assert all(len(m["content"]) == 3000 for m in longs)
    assert longs[0]["content"].startswith(short[0]["content"])
    BatchCreate.model_validate({"episodes": longs})


def test_raw_batched_rate_embeds_in_sorted_batches_of_32() -> None:
    class Recording:
        def __init__(self) -> None:
            self.calls: list[list[str]] = []

        def embed(self, texts: list[str]) -> npt.NDArray[np.float32]:
            self.calls.append(list(texts))
            return np.zeros((len(texts), 4), dtype=np.float32)

    rec = Recording()
    texts = [m["content"] for m in generate_memories(70, seed=2)]
    assert raw_embed_batched_rate(rec, texts, passes=1) > 0  # type: ignore[arg-type]
    measured = rec.calls[1:]  # after the warm-up call
    assert [len(c) for c in measured] == [32, 32, 6]
    flat = [t for c in measured for t in c]
    assert flat == sorted(texts, key=len)
