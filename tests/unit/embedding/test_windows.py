"""OnnxEmbedder.windows and EmbeddingService.windows: long texts in overlapping windows."""

from __future__ import annotations

import itertools
import random

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.factories import HashEmbedder
from ww.embedding import (
    VENDORED_MODEL,
    EmbeddingService,
    OnnxEmbedder,
    Windowed,
    vendored_model_dir,
)
from ww.embedding.onnx import DEFAULT_WINDOW_LENGTH

WORDS = [
    *("the", "river", "Lisbon", "nurse", "unbelievably", "tokenization", "1987", "quarks,"),
    *("gluons;", "café", "naïve", "children's", "hospital.", "spring", "moved", "sister"),
    *("works", "Überraschung", "東京", "emoji", "🙂", "state-of-the-art"),
]


def _long_text(seed: int, words: int) -> str:
    rng = random.Random(seed)
    return " ".join(rng.choice(WORDS) for _ in range(words))


def _spans(text: str, windows: list[str]) -> list[tuple[int, int]]:
    # Each window is a substring found after the start of the one before it.
    spans: list[tuple[int, int]] = []
    at = 0
    for window in windows:
        start = text.find(window, at)
        assert start >= 0, "a window is not a substring of the text, in order"
        spans.append((start, start + len(window)))
        at = start + 1
    return spans


def test_the_onnx_embedder_has_windows_and_the_test_embedder_not(
    embedder: OnnxEmbedder,
) -> None:
    assert isinstance(embedder, Windowed)
    assert not isinstance(HashEmbedder(), Windowed)


@pytest.mark.parametrize("text", ["", "hi", "A short note about the weather in Lisbon."])
def test_a_short_text_is_its_own_only_window(embedder: OnnxEmbedder, text: str) -> None:
    assert embedder.windows(text) == [text]


def test_a_text_the_model_sees_whole_is_not_split(embedder: OnnxEmbedder) -> None:
    text = " ".join(["river"] * (embedder.max_length - 2))
    assert embedder.windows(text) == [text]
    longer = embedder.windows(text + " river")
    assert longer[0] == text
    assert len(longer) > 2  # the fine windows cover all of it


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32), words=st.integers(300, 3000))
def test_windows_cover_the_whole_text_in_order_with_overlap(
    embedder: OnnxEmbedder, seed: int, words: int
) -> None:
    text = _long_text(seed, words)
    seen, *windows = embedder.windows(text)
    assert text.startswith(seen)
    assert len(windows) >= 2
    spans = _spans(text, windows)
    assert spans[0][0] == 0
    assert spans[-1][1] == len(text)
    for (start, end), (next_start, next_end) in itertools.pairwise(spans):
        assert start < next_start < end < next_end  # overlapping, moving forward
    tokenizer = embedder._tokenizer
    for window in windows:
        assert len(tokenizer.encode(window).ids) <= DEFAULT_WINDOW_LENGTH
    assert len(tokenizer.encode(seen).ids) <= embedder.max_length


def test_the_first_window_is_what_the_text_vector_sees(embedder: OnnxEmbedder) -> None:
    text = _long_text(7, 2000)
    first = embedder.windows(text)[0]
    whole, window = embedder.embed([text, first])
    assert float(np.dot(whole, window)) > 0.99


def test_every_word_of_a_long_text_lies_in_a_window(embedder: OnnxEmbedder) -> None:
    fact = "Mariana keeps her grandmother's violin in the attic above the bakery."
    text = _long_text(11, 4000) + " " + fact
    windows = embedder.windows(text)
    assert fact not in windows[0]
    assert fact in windows[-1]
    assert len(embedder._tokenizer.encode(windows[-1]).ids) <= DEFAULT_WINDOW_LENGTH


def test_a_window_is_a_finer_match_than_the_whole(embedder: OnnxEmbedder) -> None:
    # Why windows are shorter than the model's limit: a sentence is a larger share of one.
    fact = "Mariana keeps her grandmother's old violin locked in a cedar chest in the attic."
    text = _long_text(5, 4000) + " " + fact
    query, whole, *parts = embedder.embed(
        ["Where is granny's fiddle stored?", *embedder.windows(text)]
    )
    best = max(float(np.dot(query, p)) for p in parts)
    assert best > float(np.dot(query, whole)) + 0.1


def test_a_text_without_spaces_is_windowed_too(embedder: OnnxEmbedder) -> None:
    text = "unbelievably-tokenized/" * 400 + "tail"
    windows = embedder.windows(text)
    assert len(windows) >= 2
    spans = _spans(text, windows)
    assert spans[0][0] == 0
    assert spans[-1][1] == len(text)


async def test_the_service_gives_the_embedder_windows_or_the_whole_text(
    embedder: OnnxEmbedder,
) -> None:
    long = _long_text(3, 1500)
    service = EmbeddingService(embedder, cache_size=16, batch_size=8)
    plain = EmbeddingService(HashEmbedder(), cache_size=16, batch_size=8)
    try:
        assert service.windows(long) == embedder.windows(long)
        assert await service.windows_many(["hi", long]) == [["hi"], embedder.windows(long)]
        assert plain.windows(long) == [long]
        assert await plain.windows_many([long, "hi"]) == [[long], ["hi"]]
    finally:
        await service.aclose()
        await plain.aclose()


def test_a_window_too_short_for_its_special_tokens_is_refused() -> None:
    with pytest.raises(ValueError, match="window_length"):
        OnnxEmbedder(vendored_model_dir(), model_id=VENDORED_MODEL, window_length=4)


def _marks(n: int) -> str:
    # Punctuation only (each mark a word piece), irregular so each window is found once.
    rng = random.Random(n)
    return "".join(rng.choice("!?.,;:()[]{}") for _ in range(n))


def _covers(text: str, windows: list[str]) -> bool:
    spans = _spans(text, windows[1:])
    reach = 0
    for start, end in spans:
        if start > reach:
            return False
        reach = max(reach, end)
    return spans[0][0] == 0 and reach == len(text)


@pytest.mark.parametrize(
    "text",
    [
        _marks(32_000),  # every mark is a word piece: ~700 windows of 64
        "".join(chr(0x4E00 + (i * 7919) % 20_000) for i in range(32_000)),  # CJK, one a piece
    ],
    ids=["punctuation", "cjk"],
)
def test_a_text_needing_more_windows_than_the_cap_gets_wider_ones_covering_all_of_it(
    embedder: OnnxEmbedder, text: str
) -> None:
    windows = embedder.windows(text)
    assert len(windows) - 1 <= 256
    assert _covers(text, windows)
    # Wider windows, not the configured 64: each is still one the model sees whole.
    pieces = [len(embedder._encode([w])[0].ids) for w in windows[1:]]
    assert max(pieces) > DEFAULT_WINDOW_LENGTH
    assert max(pieces) <= embedder.max_length


def test_the_cap_follows_max_parts_and_keeps_the_configured_windows_below_it() -> None:
    few = OnnxEmbedder(vendored_model_dir(), model_id=VENDORED_MODEL, max_parts=8)
    short = _marks(300)  # 6 windows of 64 cover it
    assert few.windows(short) == OnnxEmbedder(
        vendored_model_dir(), model_id=VENDORED_MODEL
    ).windows(short)
    text = _marks(1_500)  # needs ~30 windows of 64; 8 of max_length suffice
    wide = few.windows(text)
    assert len(wide) - 1 <= 8
    assert _covers(text, wide)


def test_a_text_too_long_for_the_cap_at_max_length_is_covered_from_its_start() -> None:
    few = OnnxEmbedder(vendored_model_dir(), model_id=VENDORED_MODEL, max_parts=3)
    text = _marks(5_000)
    windows = few.windows(text)
    assert len(windows) == 4
    spans = _spans(text, windows[1:])
    assert spans[0][0] == 0
    assert all(e - s > DEFAULT_WINDOW_LENGTH for s, e in spans)  # widened to max_length
    assert spans[-1][1] < len(text)


def test_max_parts_must_be_positive() -> None:
    with pytest.raises(ValueError, match="max_parts"):
        OnnxEmbedder(vendored_model_dir(), model_id=VENDORED_MODEL, max_parts=0)
