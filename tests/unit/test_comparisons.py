"""Which queries compare events, and which events they name (ww.engine.comparisons)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from uuid import uuid4

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given
from hypothesis import strategies as st

from ww.engine.comparisons import MAX_PARTS, best_part_cosine, comparison_parts
from ww.storage.ports import ScoredId


@pytest.mark.parametrize(
    ("query", "parts"),
    [
        (
            "Which trip did I take first, the solo trip to Europe or the family road trip "
            "across the American Southwest?",
            ("the solo trip to Europe", "the family road trip across the American Southwest"),
        ),
        (
            "How many days passed between my visit to the Museum of Modern Art and the "
            "'Ancient Civilizations' exhibit?",
            ("my visit to the Museum of Modern Art", "the 'Ancient Civilizations' exhibit"),
        ),
        (
            "Which trip was first: the Paris vacation or the long Rome weekend?",
            ("the Paris vacation", "the long Rome weekend"),
        ),
        (
            "Did I repaint the fence before or after the storm damaged the roof tiles?",
            ("Did I repaint the fence before", "after the storm damaged the roof tiles"),
        ),
    ],
)
def test_a_comparison_names_its_events(query: str, parts: tuple[str, ...]) -> None:
    assert comparison_parts(query) == parts


@pytest.mark.parametrize(
    "query",
    [
        # No comparison: an "and" of one topic stays one query.
        "What did I cook and where did I eat last week?",
        "What is my sister's favourite colour?",
        # A comparison of single names: the keyword part matches names exactly.
        "Who graduated first, Emma or Rachel?",
        "Which seeds were started first, the tomatoes or the marigolds?",
        # More events than a comparison holds: a list, left whole.
        "Which came first: the new job, the old car, the red bike, the blue boat or the big house?",
    ],
)
def test_other_queries_are_left_whole(query: str) -> None:
    assert comparison_parts(query) == ()


@given(st.text(max_size=200))
def test_parts_are_none_or_two_to_max(query: str) -> None:
    parts = comparison_parts(query)
    assert len(parts) == 0 or 2 <= len(parts) <= MAX_PARTS
    assert all(p.strip() and p in query for p in parts)


def test_best_part_cosine_keeps_the_higher_of_query_and_part() -> None:
    a, b, c = uuid4(), uuid4(), uuid4()
    by_part = {0: [ScoredId(a, 0.9), ScoredId(b, 0.1)], 1: [ScoredId(b, 0.3), ScoredId(c, 0.4)]}

    async def within(vector: npt.NDArray[np.float32]) -> Sequence[ScoredId]:
        return by_part[int(vector[0])]

    vectors = np.array([[0.0], [1.0]], dtype=np.float32)
    best = asyncio.run(best_part_cosine({a: 0.2, b: 0.5}, vectors, within))
    assert best == {a: 0.9, b: 0.5, c: 0.4}
