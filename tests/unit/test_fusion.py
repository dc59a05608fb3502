"""Fusion scoring: hand-checked values and the pruning property."""

from __future__ import annotations

from datetime import timedelta
from uuid import UUID, uuid4

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.factories import T0
from ww.engine.dynamics import Fsrs
from ww.engine.recall import PRESETS, Fusion, Learned, Preset, Weights, query_words
from ww.storage.ports import CandidateRow, ScoredId

W = Weights(0.6, 0.25, 0.05, 0.05, 0.05, neighbour=0.1, speaker=0.07)


def row(ident: UUID, speaker: str | None = None, importance: float = 0.5) -> CandidateRow:
    return CandidateRow(ident, T0, importance, speaker, 1.0, T0)


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
