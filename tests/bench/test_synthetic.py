"""The latency benchmark's synthetic data: deterministic, distinct and valid API bodies."""

from __future__ import annotations

from datetime import timedelta

from bench.synthetic import (
    MAX_WORDS,
    MIN_WORDS,
    SPEAKERS,
    START,
    generate_memories,
    generate_queries,
)
from ww.api.schemas import BatchCreate, RecallRequest
from ww.models import EpisodeCreate


def test_same_seed_same_memories_and_queries() -> None:
    assert generate_memories(200, seed=3) == generate_memories(200, seed=3)
    assert generate_queries(50, seed=4) == generate_queries(50, seed=4)
    assert generate_memories(50, seed=3) != generate_memories(50, seed=5)
    # A prefix of a longer run is the shorter run.
    assert generate_memories(300, seed=3)[:200] == generate_memories(200, seed=3)


def test_memories_are_valid_distinct_and_varied() -> None:
    memories = generate_memories(500, seed=11)
    BatchCreate.model_validate({"episodes": memories})  # the API accepts them as sent
    contents = [m["content"] for m in memories]
    assert len(set(contents)) == len(contents)
    words = [len(c.split()) for c in contents]
    assert min(words) >= MIN_WORDS and max(words) <= MAX_WORDS
    assert max(words) - min(words) > 30
    assert len({m["speaker"] for m in memories}) > 3
    assert {m["speaker"] for m in memories} <= set(SPEAKERS)
    assert len({m["outcome"] for m in memories}) == 4
    assert len({m["context"].get("project") for m in memories}) > 4
    assert len({m["external_id"] for m in memories}) == len(memories)
    stamps = [EpisodeCreate.model_validate(m).timestamp for m in memories]
    assert all(s is not None and START <= s < START + timedelta(days=366) for s in stamps)
    assert max(s for s in stamps if s) - min(s for s in stamps if s) > timedelta(days=300)


def test_queries_are_distinct_valid_requests() -> None:
    queries = generate_queries(300, seed=12)
    assert len(set(queries)) == 300
    for q in queries:
        RecallRequest.model_validate({"query": q, "learn": False})
