"""Fusion scoring: hand-checked values and the pruning property."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from itertools import pairwise
from uuid import UUID, uuid4

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from tests.factories import T0
from ww.engine.dynamics import Fsrs, recency
from ww.engine.recall import (
    PRESETS,
    VALUE_GAIN,
    Fusion,
    Learned,
    Preset,
    Weights,
    feedback_margin,
    query_words,
)
from ww.storage.payload import from_micros, to_micros
from ww.storage.ports import CandidateRow, ScoredId

W = Weights(0.6, 0.25, 0.05, 0.05, 0.05, neighbour=0.1, speaker=0.07)


def row(ident: UUID, speaker: str | None = None, importance: float = 0.5) -> CandidateRow:
    return CandidateRow(ident, to_micros(T0), importance, speaker, 1.0, to_micros(T0))


def test_hand_computed_score() -> None:
    a, b = uuid4(), uuid4()
    fusion = Fusion(
        candidates={a: row(a, speaker="Ana Lopez"), b: row(b, speaker="Bo")},
        cosine={a: 0.8, b: 0.4},
        keyword=[ScoredId(a, 2.0), ScoredId(b, 6.0)],
        weights=W,
        fsrs=Fsrs(),
        now=T0,
        words=query_words("what did ana lopez say?"),
    )
    ranked = {s.id: s for s in fusion.rank(2, {a: (b,), b: (a,)})}
    base_a = 0.6 * 0.8 + 0.25 * 0.0 + 0.05 + 0.05 + 0.05 * 0.5
    base_b = 0.6 * 0.4 + 0.25 * 1.0 + 0.05 + 0.05 + 0.05 * 0.5
    assert abs(ranked[a].score - (base_a + 0.1 * base_b + 0.07)) < 1e-9
    assert abs(ranked[b].score - (base_b + 0.1 * base_a)) < 1e-9
    assert ranked[a].parts.speaker == 1.0 and ranked[b].parts.speaker == 0.0
    assert ranked[a].parts.keyword == 0.0 and ranked[b].parts.keyword == 1.0  # min-max
    assert abs(ranked[b].parts.neighbour - base_a) < 1e-9


@pytest.mark.parametrize(
    ("speaker_a", "speaker_b", "shared"),
    [
        ("Ana", "Bo", True),
        ("Ana", "Ana", False),
        ("Ana", "ana ", False),  # one speaker, however the writer typed the name
        ("ANA", "Ana", False),
        ("  ", "Ana", True),  # a blank name is no speaker
        (None, "Ana", True),
        ("Ana", None, True),
    ],
)
def test_a_neighbour_passes_its_score_on_only_across_speakers(
    speaker_a: str | None, speaker_b: str | None, shared: bool
) -> None:
    # A reply sits next to the turn it answers; the same speaker's next message does not
    # inherit its neighbour's match. An unknown speaker keeps the term as it always was.
    a, b = uuid4(), uuid4()
    fusion = Fusion(
        candidates={a: row(a, speaker=speaker_a), b: row(b, speaker=speaker_b)},
        cosine={a: 0.9, b: 0.2},
        keyword=[],
        weights=W,
        fsrs=Fsrs(),
        now=T0,
    )
    ranked = {s.id: s for s in fusion.rank(2, {a: (b,), b: (a,)})}
    base_a = 0.6 * 0.9 + 0.05 + 0.05 + 0.05 * 0.5
    base_b = 0.6 * 0.2 + 0.05 + 0.05 + 0.05 * 0.5
    assert ranked[b].parts.neighbour == pytest.approx(base_a if shared else 0.0)
    assert ranked[a].parts.neighbour == pytest.approx(base_b if shared else 0.0)
    assert ranked[b].score == pytest.approx(base_b + (0.1 * base_a if shared else 0.0))


def test_retrievability_and_recency_enter_the_score() -> None:
    a = uuid4()
    args = {"candidates": {a: row(a)}, "cosine": {a: 0.5}, "keyword": [], "weights": W}
    now = Fusion(**args, fsrs=Fsrs(), now=T0).rank(1, {})[0]  # type: ignore[arg-type]
    later = Fusion(**args, fsrs=Fsrs(), now=T0 + timedelta(days=30)).rank(1, {})[0]  # type: ignore[arg-type]
    assert now.parts.retrievability == 1.0 and later.parts.retrievability < 0.9
    assert later.parts.recency == 0.5
    assert later.score < now.score


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.tuples(st.floats(0, 1), st.floats(0, 10), st.booleans()), min_size=1, max_size=40),
    st.integers(1, 12),
    st.randoms(use_true_random=False),
    st.lists(st.tuples(st.integers(0, 39), st.integers(0, 39), st.floats(0, 1)), max_size=30),
)
def test_pruned_neighbour_lookup_ranks_like_the_full_one(
    specs: list[tuple[float, float, bool]],
    limit: int,
    rnd: object,
    links: list[tuple[int, int, float]],
) -> None:
    ids = [uuid4() for _ in specs]
    # Hebbian edges between candidates (none at all in some examples: a tighter bound).
    edges: dict[UUID, list[tuple[UUID, float]]] = {}
    for a, b, weight in links:
        if a < len(ids) and b < len(ids) and a != b:
            edges.setdefault(ids[a], []).append((ids[b], weight))
            edges.setdefault(ids[b], []).append((ids[a], weight))
    candidates = {
        i: row(i, speaker="ana" if spk else "bo") for i, (_, _, spk) in zip(ids, specs, strict=True)
    }
    fusion = Fusion(
        candidates=candidates,
        cosine={i: c for i, (c, _, _) in zip(ids, specs, strict=True)},
        keyword=[ScoredId(i, k) for i, (_, k, _) in zip(ids, specs, strict=True) if k > 0],
        weights=PRESETS[Preset.BALANCED],
        fsrs=Fsrs(),
        now=T0,
        words={"ana"},
        learned=Learned(edges=edges),
    )
    # A timeline through the candidates in a random order.
    order = list(ids)
    rnd.shuffle(order)  # type: ignore[attr-defined]
    timeline = {
        x: tuple(order[j] for j in (k - 1, k + 1) if 0 <= j < len(order))
        for k, x in enumerate(order)
    }
    full = fusion.rank(limit, timeline)
    pruned = fusion.rank(limit, {i: timeline[i] for i in fusion.contenders(limit)})
    assert [(s.id, round(s.score, 12)) for s in pruned] == [
        (s.id, round(s.score, 12)) for s in full
    ]


def test_spread_keeps_a_candidate_in_contention_only_when_edges_exist() -> None:
    # X's base is too low for the neighbour term alone to lift it past B, but with its
    # Hebbian edge to A it overtakes B: pruning must keep X when there are edges.
    a, b, x, c, d = (uuid4() for _ in range(5))
    cosine = {a: 1.0, b: 0.99, x: 0.858, c: 0.0, d: 0.0}
    timeline = {a: (c, x), x: (a,), c: (a,), b: (d,), d: (b,)}

    def fusion(edges: dict[UUID, list[tuple[UUID, float]]]) -> Fusion:
        return Fusion(
            candidates={i: row(i) for i in cosine},
            cosine=cosine,
            keyword=[],
            weights=PRESETS[Preset.BALANCED],
            fsrs=None,
            now=T0,
            learned=Learned(edges=edges),
        )

    linked = fusion({a: [(x, 1.0)], x: [(a, 1.0)]})
    assert x in linked.contenders(2)
    full = [s.id for s in linked.rank(2, timeline)]
    assert full == [a, x]
    assert [s.id for s in linked.rank(2, {i: timeline[i] for i in linked.contenders(2)})] == full
    unlinked = fusion({})
    assert x not in unlinked.contenders(2)  # without edges the bound is tighter
    assert [s.id for s in unlinked.rank(2, timeline)] == [a, b]


def _value_term(v: float) -> float:
    return 0.5 + (VALUE_GAIN if v > 0.5 else 1.0) * (v - 0.5)


def _reference_scores(
    candidates: dict[UUID, CandidateRow],
    cosine: dict[UUID, float],
    keyword: list[ScoredId],
    learned: Learned,
    timeline: dict[UUID, tuple[UUID, ...]],
    words: frozenset[str],
    now: datetime,
) -> dict[UUID, float]:
    """The fused score of each candidate, one candidate at a time, from the docstring's
    definition and the scalar dynamics (what Fusion's arrays must reproduce)."""
    w, fsrs = PRESETS[Preset.BALANCED], Fsrs()
    scores = [s.score for s in keyword if s.id in candidates]
    lo, hi = (min(scores), max(scores)) if scores else (0.0, 0.0)
    kw = {
        s.id: (s.score - lo) / (hi - lo) if hi > lo else 1.0 for s in keyword if s.id in candidates
    }
    base = {
        i: w.semantic * min(1.0, max(0.0, cosine.get(i, 0.0)))
        + w.keyword * kw.get(i, 0.0)
        + w.retrievability * fsrs.retrievability_at(r.stability, from_micros(r.last_review_us), now)
        + w.recency * recency(from_micros(r.timestamp_us), now)
        + w.importance * r.importance
        + w.activation * learned.activation.get(i, 0.0)
        + w.value * _value_term(learned.value.get(i, 0.5))
        + w.ff * learned.ff.get(i, 0.0)
        for i, r in candidates.items()
    }
    out = {}
    for i, r in candidates.items():
        speaker = r.speaker is not None and all(t in words for t in r.speaker.lower().split())
        near = max(
            (
                base[n]
                for n in timeline.get(i, ())
                if n in base and not (r.speaker and r.speaker == candidates[n].speaker)
            ),
            default=0.0,
        )
        spread = max((wt * base[n] for n, wt in learned.edges.get(i, ()) if n in base), default=0.0)
        out[i] = base[i] + w.speaker * speaker + w.neighbour * min(1.0, near)
        out[i] += w.spread * min(1.0, spread)
    return out


_unit = st.floats(0, 1)


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.tuples(
            _unit,
            st.floats(0, 10),
            st.sampled_from(["ana", "bo", None]),
            _unit,
            st.floats(0.01, 50),
            _unit,
        ),
        min_size=1,
        max_size=30,
    ),
    st.lists(st.tuples(st.integers(0, 29), st.integers(0, 29), _unit), max_size=20),
    st.lists(st.tuples(_unit, _unit, _unit), max_size=30),
    st.integers(1, 12),
    st.floats(-5, 400),
)
def test_fused_scores_equal_the_per_candidate_definition(
    specs: list[tuple[float, float, str | None, float, float, float]],
    links: list[tuple[int, int, float]],
    learned_specs: list[tuple[float, float, float]],
    limit: int,
    age_days: float,
) -> None:
    ids = [uuid4() for _ in specs]
    now = T0 + timedelta(days=400)
    candidates = {
        i: CandidateRow(
            i,
            to_micros(now - timedelta(days=age_days * fraction)),
            importance,
            spk,
            stability,
            to_micros(now - timedelta(days=age_days * (1 - fraction))),
        )
        for i, (_, _, spk, importance, stability, fraction) in zip(ids, specs, strict=True)
    }
    cosine = {i: 2 * c - 0.5 for i, (c, *_) in zip(ids, specs, strict=True)}  # out of [0, 1] too
    keyword = [ScoredId(i, k) for i, (_, k, *_) in zip(ids, specs, strict=True) if k > 0]
    edges: dict[UUID, list[tuple[UUID, float]]] = {}
    for a, b, weight in links:
        if a < len(ids) and b < len(ids) and a != b:
            edges.setdefault(ids[a], []).append((ids[b], weight))
            edges.setdefault(ids[b], []).append((ids[a], weight))
    learned = Learned(
        activation={i: a for i, (a, _, _) in zip(ids, learned_specs, strict=False)},
        value={i: v for i, (_, v, _) in zip(ids, learned_specs, strict=False)},
        ff={i: f for i, (_, _, f) in zip(ids, learned_specs, strict=False)},
        edges=edges,
    )
    timeline = {
        x: tuple(ids[j] for j in (k - 1, k + 1) if 0 <= j < len(ids)) for k, x in enumerate(ids)
    }
    words = frozenset({"ana"})
    fusion = Fusion(
        candidates=candidates,
        cosine=cosine,
        keyword=keyword,
        weights=PRESETS[Preset.BALANCED],
        fsrs=Fsrs(),
        now=now,
        words=words,
        learned=learned,
    )
    expected = _reference_scores(candidates, cosine, keyword, learned, timeline, words, now)
    ranked = fusion.rank(limit, timeline)
    assert len(ranked) == min(limit, len(ids))
    for s in ranked:
        assert abs(s.score - expected[s.id]) < 1e-9
    # Best first, and nothing left out scores above what was kept (up to float noise: the
    # reference takes ages from timedelta, Fusion from timestamps).
    assert all(a.score >= b.score for a, b in pairwise(ranked))
    kept = {s.id for s in ranked}
    assert all(expected[i] <= ranked[-1].score + 1e-9 for i in ids if i not in kept)


@pytest.fixture
def local_time_away_from_utc(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    # So that reading a naive time as local time would show.
    monkeypatch.setenv("TZ", "America/New_York")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.mark.usefixtures("local_time_away_from_utc")
def test_a_naive_clock_is_taken_as_utc() -> None:
    a = uuid4()
    args = {"candidates": {a: row(a)}, "cosine": {a: 0.5}, "keyword": [], "weights": W}
    later = T0 + timedelta(days=3, hours=5)
    aware = Fusion(**args, fsrs=Fsrs(), now=later).rank(1, {})[0]  # type: ignore[arg-type]
    naive = Fusion(**args, fsrs=Fsrs(), now=later.replace(tzinfo=None)).rank(1, {})[0]  # type: ignore[arg-type]
    assert naive.score == aware.score and naive.parts == aware.parts


@settings(max_examples=150, deadline=None)
@given(
    st.lists(st.tuples(_unit, st.floats(0, 10), _unit, _unit, _unit), min_size=2, max_size=20),
    st.lists(st.tuples(st.integers(0, 19), st.integers(0, 19), _unit), max_size=15),
    st.sampled_from(list(Preset)),
)
# Both learned terms at their extremes, the trailing memory rated up and the leader down
# (a neutral memory between them, their only neighbour), across a gap of 0.24 that the
# value term alone could not close.
@example(
    [(0.2, 0.0, 0.5, 1.0, 1.0), (0.0, 0.0, 0.5, 0.5, 0.5), (0.6, 0.0, 0.5, 0.0, 0.0)],
    [],
    Preset.BALANCED,
)
def test_feedback_moves_a_memory_by_at_most_the_margin(
    specs: list[tuple[float, float, float, float, float]],
    links: list[tuple[int, int, float]],
    preset: Preset,
) -> None:
    """Whatever values feedback has taught, and whatever the FF encoder learned from it, a
    memory never outranks one that beat it by more than ``feedback_margin`` without
    feedback; and all-unrated values (0.5) score exactly like no learned values at all."""
    ids = [uuid4() for _ in specs]
    edges: dict[UUID, list[tuple[UUID, float]]] = {}
    for a, b, weight in links:
        if a < len(ids) and b < len(ids) and a != b:
            edges.setdefault(ids[a], []).append((ids[b], weight))
            edges.setdefault(ids[b], []).append((ids[a], weight))
    timeline = {
        x: tuple(ids[j] for j in (k - 1, k + 1) if 0 <= j < len(ids)) for k, x in enumerate(ids)
    }
    w = PRESETS[preset]

    def scores(value: dict[UUID, float], ff: dict[UUID, float]) -> dict[UUID, float]:
        fusion = Fusion(
            candidates={
                i: row(i, importance=imp) for i, (_, _, imp, *_) in zip(ids, specs, strict=True)
            },
            cosine={i: c for i, (c, *_) in zip(ids, specs, strict=True)},
            keyword=[ScoredId(i, k) for i, (_, k, *_) in zip(ids, specs, strict=True) if k > 0],
            weights=w,
            fsrs=None,
            now=T0,
            learned=Learned(value=value, ff=ff, edges=edges),
        )
        return {s.id: s.score for s in fusion.rank(len(ids), timeline)}

    half = dict.fromkeys(ids, 0.5)
    assert scores(half, {}) == scores({}, {})
    # Before any feedback the encoder is the identity, whose goodness is 0.5 for every pair.
    unrated = scores(half, half)
    rated = scores(
        {i: v for i, (*_, v, _) in zip(ids, specs, strict=True)},
        {i: g for i, (*_, g) in zip(ids, specs, strict=True)},
    )
    margin = feedback_margin(w)
    for a in ids:
        for b in ids:
            if unrated[b] - unrated[a] > margin + 1e-9:
                assert rated[b] > rated[a]
