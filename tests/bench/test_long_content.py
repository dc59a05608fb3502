"""bench/long_content.py and the long-memory figures of bench/latency.py: the memories they
ingest, the parts they count and the report they write."""

from __future__ import annotations

from bench.latency_embed import long_memories, parts_per_memory
from bench.latency_report import _long
from bench.long_content import FACTS, long_memory, markdown, shared_words
from bench.synthetic import generate_memories
from ww.api.schemas import BatchCreate
from ww.embedding import OnnxEmbedder


def test_shared_words_compare_stems_as_keyword_search_does() -> None:
    assert shared_words("She keeps a violin.", "Who is keeping it?") == {"keep"}
    assert shared_words("Grandmother's violin", "granny's violins") == {"violin"}
    assert not shared_words("", "anything")


def test_each_fact_and_its_question_share_no_word() -> None:
    assert len({q for _, q in FACTS}) == len(FACTS) == 20
    for fact, question in FACTS:
        assert not shared_words(fact, question), (fact, question)


def test_a_long_memory_ends_in_its_fact_and_shares_no_word_with_its_question() -> None:
    for n in (0, 7, 20):
        text, question = long_memory(n, 30_000)
        fact, asked = FACTS[n % len(FACTS)]
        assert len(text) == 30_000
        assert text.endswith(" " + fact)
        assert question == asked
        assert not shared_words(text, question)
    BatchCreate.model_validate({"episodes": [{"content": long_memory(3, 30_000)[0]}]})
    assert long_memory(1, 5000) == long_memory(1, 5000)  # deterministic


def test_parts_are_the_windows_after_the_first(onnx_embedder: OnnxEmbedder) -> None:
    short = generate_memories(40, seed=7)
    assert parts_per_memory(onnx_embedder, short[:5]) == 0.0
    assert parts_per_memory(onnx_embedder, []) == 0.0
    longs = long_memories(short, count=2, chars=6000)
    want = sum(len(onnx_embedder.windows(m["content"])) - 1 for m in longs) / 2
    assert parts_per_memory(onnx_embedder, longs) == want > 10


def test_the_reports_show_parts_and_cost_per_character() -> None:
    result = {
        "machine": "x86_64, 2 CPUs",
        "window_length": 64,
        "long_memories": 20,
        "long_chars": 30000,
        "short_memories": 2000,
        "short_chars": 140,
        "short_ingest_per_s": 35.0,
        "short_ingest_chars_per_s": 4900,
        "long_ingest_per_s": 0.2,
        "long_ingest_chars_per_s": 6500,
        "long_over_short_per_char": 0.75,
        "parts_per_long_memory": 150.5,
        "fact_at_end_hit_at_1": 0.9,
        "fact_at_end_hit_at_5": 0.95,
        "fact_at_end_hit_at_1_semantic_preset": 1.0,
        "fact_semantic_mean": 0.33,
        "main_vector_only_cosine_mean": 0.01,
    }
    text = markdown(result)
    assert "| 20 long | 30000 | 0.2 | 6500 | 150.5 |" in text
    assert "costs 0.75x one of a short" in text
    assert "--window 64`" in text
    assert "hit@1 0.9, hit@5 0.95 (`balanced`); hit@1 1.0 with the `semantic` preset" in text
    size = {
        "long_ingest_per_s": 0.2,
        "long_parts_per_memory": 31.0,
        "long_cost_per_char_ratio": 1.1,
    }
    assert _long(size) == "0.2 (31.0 parts, 1.1x)"
    assert _long({"long_ingest_per_s": 0.2}) == "0.2"
