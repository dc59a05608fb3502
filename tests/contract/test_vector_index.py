"""Contract of the VectorIndex port."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from uuid import UUID, uuid4

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.contract.conftest import DIM
from tests.factories import at, make_episode, unit
from ww.models import EpisodeContext, EpisodeFilter, Outcome
from ww.storage import VectorIndex, VectorItem, vector_base
from ww.storage.payload import episode_payload
from ww.storage.vector_base import part_id


def item(session: str, seed: int, **kw: object) -> VectorItem:
    ep = make_episode(session, **kw)  # type: ignore[arg-type]
    return VectorItem(ep.id, unit(DIM, seed), episode_payload(ep))


async def test_search_orders_by_cosine(vectors: VectorIndex) -> None:
    items = [item("s1", i) for i in range(20)]
    await vectors.upsert("s1", items)
    query = items[3].vector
    hits = await vectors.search("s1", query, EpisodeFilter(), 5)
    assert hits[0].id == items[3].id
    assert hits[0].score == pytest.approx(1.0, abs=1e-5)
    expected = sorted(items, key=lambda i: -float(np.dot(i.vector, query)))[:5]
    assert [h.id for h in hits] == [i.id for i in expected]
    for h, e in zip(hits, expected, strict=True):
        assert h.score == pytest.approx(float(np.dot(e.vector, query)), abs=1e-4)


async def test_sessions_are_isolated(vectors: VectorIndex) -> None:
    a, b = item("s1", 1), item("s2", 1)
    await vectors.upsert("s1", [a])
    await vectors.upsert("s2", [b])
    assert [h.id for h in await vectors.search("s1", a.vector, EpisodeFilter(), 10)] == [a.id]
    assert await vectors.get_vectors("s2", [a.id]) == {}
    await vectors.delete("s2", [a.id])  # cannot delete another session's point
    assert await vectors.ids("s1") == {a.id}
    await vectors.set_payload("s2", a.id, {"archived": 1})
    assert len(await vectors.search("s1", a.vector, EpisodeFilter(), 10)) == 1
    await vectors.delete_session("s2")
    assert await vectors.count("s2") == 0
    assert await vectors.count("s1") == 1


async def test_upsert_refuses_foreign_payload_and_bad_shape(vectors: VectorIndex) -> None:
    with pytest.raises(ValueError):
        await vectors.upsert("s1", [item("s2", 1)])
    bad = item("s1", 1)
    with pytest.raises(ValueError):
        await vectors.upsert("s1", [VectorItem(bad.id, np.ones(DIM + 1, np.float32), bad.payload)])


async def test_get_vectors_and_ids(vectors: VectorIndex) -> None:
    items = [item("s1", i) for i in range(3)]
    await vectors.upsert("s1", items)
    got = await vectors.get_vectors("s1", [items[0].id, uuid4()])
    assert set(got) == {items[0].id}
    np.testing.assert_allclose(got[items[0].id], items[0].vector, atol=1e-5)
    assert await vectors.ids("s1") == {i.id for i in items}
    await vectors.delete("s1", [items[0].id])
    assert await vectors.ids("s1") == {items[1].id, items[2].id}
    assert await vectors.count("s1") == 2


async def test_filters_match_record_store_semantics(vectors: VectorIndex) -> None:
    a = item(
        "s1",
        1,
        timestamp=at(10),
        speaker="alice",
        outcome=Outcome.SUCCESS,
        context=EpisodeContext(project="p1"),
        metadata={"kind": "x", "n": 1, "flag": True},
    )
    b = item(
        "s1",
        2,
        timestamp=at(20),
        speaker="bob",
        outcome=Outcome.FAILURE,
        context=EpisodeContext(project="p2"),
        metadata={"kind": "y", "n": "1", "flag": 1},
    )
    c = item("s1", 3, timestamp=at(30), archived=True)
    await vectors.upsert("s1", [a, b, c])

    async def ids(**kw: object) -> set[object]:
        hits = await vectors.search("s1", a.vector, EpisodeFilter(**kw), 10)  # type: ignore[arg-type]
        return {h.id for h in hits}

    assert await ids() == {a.id, b.id}
    assert await ids(include_archived=True) == {a.id, b.id, c.id}
    assert await ids(time_from=at(15)) == {b.id}
    assert await ids(time_to=at(20)) == {a.id}
    assert await ids(outcome=Outcome.FAILURE) == {b.id}
    assert await ids(project="p1") == {a.id}
    assert await ids(speaker="bob") == {b.id}
    assert await ids(metadata={"kind": "x"}) == {a.id}
    assert await ids(metadata={"n": 1}) == {a.id}
    assert await ids(metadata={"n": "1"}) == {b.id}
    assert await ids(metadata={"flag": True}) == {a.id}
    assert await ids(metadata={"missing": "x"}) == set()


async def test_set_payload_moves_filters(vectors: VectorIndex) -> None:
    a = item("s1", 1)
    await vectors.upsert("s1", [a])
    await vectors.set_payload("s1", a.id, {**a.payload, "archived": 1})
    assert await vectors.search("s1", a.vector, EpisodeFilter(), 10) == []
    assert len(await vectors.search("s1", a.vector, EpisodeFilter(include_archived=True), 10)) == 1


async def test_optimize_keeps_results(vectors: VectorIndex) -> None:
    items = [item("s1", i) for i in range(50)]
    await vectors.upsert("s1", items)
    before = await vectors.search("s1", items[7].vector, EpisodeFilter(), 5)
    assert await vectors.unindexed() >= 0
    await vectors.optimize()
    after = await vectors.search("s1", items[7].vector, EpisodeFilter(), 5)
    assert [h.id for h in after] == [h.id for h in before]
    await vectors.check()


async def test_a_narrow_filter_in_a_built_index_finds_what_a_scan_finds(
    vectors: VectorIndex,
) -> None:
    """A filter on a field whose values have no graph links of their own (a speaker with a
    tenth of a big session), searched once the index is built: the scan's top 10. Without
    ACORN the Qdrant Edge graph gave 0 to 0.56 of it (docs/benchmarks.md, "Graph links per
    payload field")."""
    items = [item("s1", i, speaker="alice" if i % 10 == 0 else "bob") for i in range(2000)]
    await vectors.upsert("s1", items)
    await vectors.upsert("s2", [item("s2", i, speaker="alice") for i in range(2000, 2100)])
    await vectors.optimize()
    alice = [i for i in items if i.payload["speaker"] == "alice"]
    overlaps = []
    for seed in range(20):
        query = unit(DIM, 10_000 + seed)
        hits = {h.id for h in await vectors.search("s1", query, EpisodeFilter(speaker="alice"), 10)}
        scan = sorted(alice, key=lambda i: -float(np.dot(i.vector, query)))[:10]
        assert len(hits) == 10 and hits <= {i.id for i in alice}
        overlaps.append(len(hits & {i.id for i in scan}) / 10)
    assert np.mean(overlaps) >= 0.95


async def test_within_a_built_index_scores_every_named_memory(vectors: VectorIndex) -> None:
    """``within`` (the engine's cosine of keyword-only candidates) names more points than
    the scan threshold: every one comes back, scored exactly. Without ACORN the Qdrant Edge
    graph returned 0-60% of 300 named memories."""
    items = [item("s1", i) for i in range(2000)]
    await vectors.upsert("s1", items)
    await vectors.optimize()
    chosen = items[::7][:300]
    for seed in range(5):
        query = unit(DIM, 20_000 + seed)
        hits = await vectors.search(
            "s1", query, EpisodeFilter(), 300, within=[i.id for i in chosen]
        )
        assert {h.id: round(h.score, 4) for h in hits} == {
            i.id: round(float(np.dot(i.vector, query)), 4) for i in chosen
        }


async def test_search_within_ids(vectors: VectorIndex) -> None:
    items = [item("s1", i) for i in range(10)]
    foreign = item("s2", 99)
    await vectors.upsert("s1", items)
    await vectors.upsert("s2", [foreign])
    query = items[0].vector
    chosen = [items[4].id, items[7].id, foreign.id]
    hits = await vectors.search("s1", query, EpisodeFilter(), 10, within=chosen)
    assert {h.id for h in hits} == {items[4].id, items[7].id}
    for h in hits:
        vec = next(i.vector for i in items if i.id == h.id)
        assert h.score == pytest.approx(float(np.dot(vec, query)), abs=1e-4)
    assert await vectors.search("s1", query, EpisodeFilter(), 10, within=[]) == []


async def test_equal_scores_rank_by_id_across_the_limit(vectors: VectorIndex) -> None:
    # Same text, same vector: every backend must pick and order tied memories the same way.
    twins = [item("s1", 5) for _ in range(12)]
    other = item("s1", 6)
    await vectors.upsert("s1", [*twins, other])
    by_id = sorted(twins, key=lambda i: i.id.int)
    for limit in (1, 4, 11, 12, 13):
        hits = await vectors.search("s1", twins[0].vector, EpisodeFilter(), limit)
        expected = [i.id for i in by_id][:limit]
        if limit == 13:
            expected.append(other.id)
        assert [h.id for h in hits] == expected, limit
        assert len({h.score for h in hits[:12]}) == 1


# -- parts: further vectors of one memory -------------------------------------------------------


def with_parts(base: VectorItem, *seeds: int) -> VectorItem:
    return VectorItem(base.id, base.vector, base.payload, tuple(unit(DIM, s) for s in seeds))


def far_from(query: np.ndarray) -> np.ndarray:
    return (-query).astype(np.float32)


async def test_best_part_wins_and_the_memory_comes_once(vectors: VectorIndex) -> None:
    query = unit(DIM, 100)
    others = [item("s1", i) for i in range(5)]
    base = item("s1", 0)
    long = VectorItem(
        base.id, far_from(query), base.payload, (unit(DIM, 101), query.copy(), unit(DIM, 102))
    )
    await vectors.upsert("s1", [long, *others])
    hits = await vectors.search("s1", query, EpisodeFilter(), 10)
    assert [h.id for h in hits].count(long.id) == 1
    assert len(hits) == 6
    assert hits[0].id == long.id
    assert hits[0].score == pytest.approx(1.0, abs=1e-5)
    part_ids = {part_id(long.id, k) for k in range(1, 4)}
    assert not part_ids & {h.id for h in hits}


async def test_limit_counts_memories_not_parts(vectors: VectorIndex) -> None:
    query = unit(DIM, 100)
    near = [(query + 0.01 * unit(DIM, 200 + k)).astype(np.float32) for k in range(12)]
    base = item("s1", 0)
    crowd = VectorItem(base.id, far_from(query), base.payload, tuple(near))
    others = [item("s1", i) for i in range(1, 5)]
    await vectors.upsert("s1", [crowd, *others])
    hits = await vectors.search("s1", query, EpisodeFilter(), 3)
    assert len(hits) == 3
    assert hits[0].id == crowd.id
    best_others = sorted(others, key=lambda i: -float(np.dot(i.vector, query)))[:2]
    assert [h.id for h in hits[1:]] == [i.id for i in best_others]


async def test_filters_and_within_apply_through_parts(vectors: VectorIndex) -> None:
    query = unit(DIM, 100)
    base = item("s1", 0, archived=True)
    hidden = VectorItem(base.id, far_from(query), base.payload, (query.copy(),))
    shown = item("s1", 1)
    await vectors.upsert("s1", [hidden, shown])
    assert [h.id for h in await vectors.search("s1", query, EpisodeFilter(), 10)] == [shown.id]
    everything = await vectors.search("s1", query, EpisodeFilter(include_archived=True), 10)
    assert [h.id for h in everything] == [hidden.id, shown.id]
    flt = EpisodeFilter(include_archived=True)
    inside = await vectors.search("s1", query, flt, 10, within=[hidden.id])
    assert [h.id for h in inside] == [hidden.id]
    assert inside[0].score == pytest.approx(1.0, abs=1e-5)
    outside = await vectors.search("s1", query, flt, 10, within=[shown.id])
    assert [h.id for h in outside] == [shown.id]


async def test_set_payload_moves_the_parts_filters(vectors: VectorIndex) -> None:
    query = unit(DIM, 100)
    base = item("s1", 0)
    mem = VectorItem(base.id, far_from(query), base.payload, (query.copy(),))
    await vectors.upsert("s1", [mem])
    await vectors.set_payload("s1", mem.id, {**mem.payload, "archived": 1})
    assert await vectors.search("s1", query, EpisodeFilter(), 10) == []
    hits = await vectors.search("s1", query, EpisodeFilter(include_archived=True), 10)
    assert [h.id for h in hits] == [mem.id]
    assert hits[0].score == pytest.approx(1.0, abs=1e-5)
    await vectors.set_payload("s1", mem.id, {"archived": 0})
    hits = await vectors.search("s1", query, EpisodeFilter(), 10, within=[mem.id])
    assert hits[0].score == pytest.approx(1.0, abs=1e-5)
    with pytest.raises(ValueError):
        await vectors.set_payload("s1", mem.id, {"part_of": str(uuid4())})


async def test_delete_and_delete_session_remove_parts(vectors: VectorIndex) -> None:
    query = unit(DIM, 100)
    a, b = item("s1", 0), item("s1", 1)
    gone = VectorItem(a.id, far_from(query), a.payload, (query.copy(), unit(DIM, 5)))
    await vectors.upsert("s1", [gone, b])
    await vectors.delete("s1", [gone.id])
    assert [h.id for h in await vectors.search("s1", query, EpisodeFilter(), 10)] == [b.id]
    # Written again without touching parts: none came back.
    await vectors.upsert("s1", [VectorItem(a.id, far_from(query), a.payload)])
    hits = await vectors.search("s1", query, EpisodeFilter(), 10, within=[a.id])
    assert hits[0].score == pytest.approx(-1.0, abs=1e-5)
    await vectors.upsert("s1", [gone])
    await vectors.delete_session("s1")
    assert await vectors.search("s1", query, EpisodeFilter(include_archived=True), 10) == []
    await vectors.upsert("s1", [VectorItem(a.id, far_from(query), a.payload)])
    hits = await vectors.search("s1", query, EpisodeFilter(), 10)
    assert [(h.id, round(h.score, 4)) for h in hits] == [(a.id, -1.0)]


async def test_ids_count_and_get_vectors_ignore_parts(vectors: VectorIndex) -> None:
    a, b = item("s1", 0), item("s1", 1)
    await vectors.upsert("s1", [with_parts(a, 10, 11, 12), b])
    assert await vectors.ids("s1") == {a.id, b.id}
    assert await vectors.count("s1") == 2
    got = await vectors.get_vectors("s1", [a.id, part_id(a.id, 1)])
    assert set(got) == {a.id}
    np.testing.assert_allclose(got[a.id], a.vector, atol=1e-5)
    assert await vectors.unindexed() >= 0


async def test_fewer_parts_remove_the_stale_ones(vectors: VectorIndex) -> None:
    query = unit(DIM, 100)
    base = item("s1", 0)
    main = far_from(query)
    await vectors.upsert(
        "s1", [VectorItem(base.id, main, base.payload, (unit(DIM, 1), unit(DIM, 2), query))]
    )
    first = unit(DIM, 1)
    await vectors.upsert("s1", [VectorItem(base.id, main, base.payload, (first,))])
    hits = await vectors.search("s1", query, EpisodeFilter(), 10)
    assert [h.id for h in hits] == [base.id]
    assert hits[0].score == pytest.approx(float(np.dot(first, query)), abs=1e-4)
    await vectors.upsert("s1", [VectorItem(base.id, main, base.payload, ())])
    hits = await vectors.search("s1", query, EpisodeFilter(), 10)
    assert hits[0].score == pytest.approx(-1.0, abs=1e-5)


async def test_no_parts_given_keeps_the_parts(vectors: VectorIndex) -> None:
    query = unit(DIM, 100)
    base = item("s1", 0)
    await vectors.upsert("s1", [VectorItem(base.id, unit(DIM, 3), base.payload, (query,))])
    # Reconsolidation moves the main vector and says nothing of the parts.
    await vectors.upsert("s1", [VectorItem(base.id, far_from(query), base.payload)])
    hits = await vectors.search("s1", query, EpisodeFilter(), 10)
    assert [h.id for h in hits] == [base.id]
    assert hits[0].score == pytest.approx(1.0, abs=1e-5)
    got = await vectors.get_vectors("s1", [base.id])
    np.testing.assert_allclose(got[base.id], far_from(query), atol=1e-5)


async def test_upsert_refuses_a_part_of_the_wrong_shape(vectors: VectorIndex) -> None:
    base = item("s1", 0)
    bad = VectorItem(base.id, base.vector, base.payload, (unit(DIM, 1), np.ones(DIM + 1)))
    with pytest.raises(ValueError):
        await vectors.upsert("s1", [bad])
    with pytest.raises(ValueError):
        await vectors.upsert("s1", [VectorItem(base.id, base.vector, {**base.payload, "part": 1})])
    assert await vectors.count("s1") == 0


_memories = st.lists(
    st.tuples(st.integers(0, 2**16), st.lists(st.integers(0, 2**16), max_size=4)),
    min_size=1,
    max_size=12,
)


@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(memories=_memories, query_seed=st.integers(0, 2**16), limit=st.integers(1, 14))
async def test_search_ranks_memories_by_their_best_vector(
    vectors: VectorIndex, memories: list[tuple[int, list[int]]], query_seed: int, limit: int
) -> None:
    session = f"p-{uuid4().hex[:12]}"
    query = unit(DIM, query_seed)
    items = [
        with_parts(item(session, seed), *parts)
        for seed, parts in memories
        if len({seed, *parts}) == 1 + len(parts)  # distinct seeds: no exact ties to order
    ]
    await vectors.upsert(session, items)

    def best(i: VectorItem) -> float:
        return max(float(np.dot(v, query)) for v in (i.vector, *(i.parts or ())))

    expected = sorted(items, key=lambda i: (-best(i), i.id.int))[:limit]
    hits = await vectors.search(session, query, EpisodeFilter(), limit)
    assert [h.id for h in hits] == [i.id for i in expected]
    for h, e in zip(hits, expected, strict=True):
        assert h.score == pytest.approx(best(e), abs=1e-4)
    await vectors.delete_session(session)


async def test_a_batch_is_written_in_bounded_chunks_before_stale_parts_go(
    vectors: VectorIndex, monkeypatch: pytest.MonkeyPatch
) -> None:
    query = unit(DIM, 100)
    a, b, c = item("s1", 0), item("s1", 1), item("s1", 2)
    await vectors.upsert("s1", [with_parts(b, 20, 21, 22, 23, 24)])
    monkeypatch.setattr(vector_base, "WRITE_CHUNK", 3)
    writes: list[int | str] = []
    upsert, beyond = vectors._upsert, vectors._delete_parts_beyond  # type: ignore[attr-defined]

    async def spy_upsert(session_id: str, points: Sequence[VectorItem]) -> None:
        writes.append(len(points))
        await upsert(session_id, points)

    async def spy_beyond(session_id: str, keep: Mapping[UUID, int]) -> None:
        writes.append("stale")
        await beyond(session_id, keep)

    monkeypatch.setattr(vectors, "_upsert", spy_upsert)
    monkeypatch.setattr(vectors, "_delete_parts_beyond", spy_beyond)
    long = VectorItem(
        a.id, far_from(query), a.payload, (*(unit(DIM, 30 + k) for k in range(6)), query)
    )
    await vectors.upsert("s1", [long, with_parts(b, 20, 21), c])
    assert writes == [3, 3, 3, 3, "stale"]  # 8 + 3 + 1 points, then the stale parts
    assert await vectors.ids("s1") == {a.id, b.id, c.id}
    hits = await vectors.search("s1", query, EpisodeFilter(), 1)
    assert hits[0].id == a.id
    assert hits[0].score == pytest.approx(1.0, abs=1e-5)
    stale = await vectors.search("s1", unit(DIM, 24), EpisodeFilter(), 10, within=[b.id])
    assert stale[0].score < 0.99  # part 5 of b is gone


async def test_parts_stay_in_their_session(vectors: VectorIndex) -> None:
    query = unit(DIM, 100)
    one, two = item("s1", 0), item("s2", 1)
    await vectors.upsert("s1", [VectorItem(one.id, far_from(query), one.payload, (query,))])
    await vectors.upsert("s2", [VectorItem(two.id, far_from(query), two.payload, (query,))])
    anyv = EpisodeFilter(include_archived=True)
    hits = await vectors.search("s1", query, anyv, 10)
    assert [h.id for h in hits] == [one.id]
    assert await vectors.search("s1", query, anyv, 10, within=[two.id]) == []
    assert await vectors.ids("s1") == {one.id}
    await vectors.delete("s1", [two.id])  # another session's memory: its parts stay
    assert [h.id for h in await vectors.search("s2", query, anyv, 10)] == [two.id]
    await vectors.delete_session("s2")
    assert await vectors.search("s2", query, anyv, 10) == []
    hits = await vectors.search("s1", query, anyv, 10)
    assert [h.id for h in hits] == [one.id]
    assert hits[0].score == pytest.approx(1.0, abs=1e-5)
