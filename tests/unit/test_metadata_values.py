"""Which metadata values are storable: integers that fit in 64 bits and finite numbers."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from ww.models import INT64_MAX, INT64_MIN, EpisodeCreate, EpisodeFilter


@given(st.integers(min_value=-(2**70), max_value=2**70))
def test_an_integer_is_accepted_exactly_when_it_fits_in_64_bits(n: int) -> None:
    fits = INT64_MIN <= n <= INT64_MAX
    for build in (
        lambda: EpisodeCreate(content="x", metadata={"n": n}).metadata["n"],
        lambda: EpisodeFilter(metadata={"n": n}).metadata["n"],
    ):
        if fits:
            value = build()
            assert value == n and type(value) is int
        else:
            with pytest.raises(ValidationError, match="64 bits"):
                build()


@given(st.floats(allow_nan=True, allow_infinity=True))
def test_a_float_is_accepted_exactly_when_it_is_finite(x: float) -> None:
    if math.isfinite(x):
        assert EpisodeCreate(content="x", metadata={"x": x}).metadata["x"] == x
    else:
        with pytest.raises(ValidationError, match="finite"):
            EpisodeCreate(content="x", metadata={"x": x})


@given(st.text(alphabet=st.characters(categories=["Zs", "Cc"]), max_size=20))
def test_text_of_whitespace_alone_is_not_content(text: str) -> None:
    if text.strip():
        assert EpisodeCreate(content=text).content == text
    else:
        with pytest.raises(ValidationError):
            EpisodeCreate(content=text)


def test_booleans_are_not_taken_for_integers() -> None:
    assert EpisodeCreate(content="x", metadata={"b": True}).metadata["b"] is True
