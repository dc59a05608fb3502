"""The calibrated relevance of a hit: a probability that rises with both kinds of evidence."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from ww.engine.relevance import coverage, relevance

cosines = st.floats(min_value=-1.0, max_value=1.0)
shares = st.floats(min_value=0.0, max_value=1.0)


@given(cos=cosines, cover=shares, more=st.floats(min_value=0.01, max_value=1.0))
def test_relevance_is_a_probability_rising_with_evidence(
    cos: float, cover: float, more: float
) -> None:
    r = relevance(cos, cover)
    assert 0.0 <= r <= 1.0
    assert relevance(min(1.0, cos + more), cover) >= r
    assert relevance(cos, min(1.0, cover + more)) >= r


def test_unrelated_is_unlikely_and_a_close_match_likely() -> None:
    # Unrelated sentences meet at a cosine of about 0-0.15 with this model.
    assert relevance(0.05, 0.0) < 0.05
    assert relevance(0.15, 0.0) < 0.05
    assert relevance(0.8, 1.0) > 0.95


def test_coverage_counts_the_query_terms_the_memory_holds() -> None:
    assert coverage(["sister", "lives"], "My sister lives in Porto.") == 1.0
    assert coverage(["sister", "cat"], "My sister lives in Porto.") == 0.5
    assert coverage([], "anything") == 0.0
