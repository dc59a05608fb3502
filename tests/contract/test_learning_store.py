"""Contract of ``LearningStore``: add a backend to the ``learning`` fixture's params."""

from __future__ import annotations

from datetime import timedelta
from uuid import uuid4

import numpy as np
import pytest

from tests.factories import T0
from ww.storage import RecordStore
from ww.storage.factory import learning_store
from ww.storage.ports.learning import (
    CandidateLearning,
    EncoderBlob,
    FeedbackEntry,
    HebbianEdge,
    LearningStore,
    MemoryState,
    PastRating,
    RecallLogEntry,
)


@pytest.fixture
def learning(side_records: RecordStore) -> LearningStore:
    return learning_store(side_records)


def entry(session: str = "s1", minutes: int = 0, n: int = 3) -> RecallLogEntry:
    vec = np.arange(4, dtype=np.float32) / 10
    return RecallLogEntry(
        uuid4(), session, T0 + timedelta(minutes=minutes), vec, tuple(uuid4() for _ in range(n))
    )


async def test_recall_log_round_trips_within_its_session(learning: LearningStore) -> None:
    e = entry()
    await learning.log_recall(e, None)
    got = await learning.get_recall("s1", e.recall_id)
    assert got is not None
    assert (got.memory_ids, got.created_at) == (e.memory_ids, e.created_at)
    assert np.array_equal(got.query_vector, e.query_vector)
    assert await learning.get_recall("s2", e.recall_id) is None
    assert await learning.get_recall("s1", uuid4()) is None


async def test_old_recalls_are_forgotten_as_new_ones_arrive(learning: LearningStore) -> None:
    old, new = entry(minutes=0), entry(minutes=120)
    other = entry("s2", minutes=0)
    await learning.log_recall(old, None)
    await learning.log_recall(other, None)
    await learning.log_recall(new, T0 + timedelta(minutes=60))
    assert await learning.get_recall("s1", old.recall_id) is None
    assert await learning.get_recall("s1", new.recall_id) is not None
    assert await learning.get_recall("s2", other.recall_id) is not None  # another session


async def test_access_times_are_capped_to_the_most_recent(learning: LearningStore) -> None:
    m = uuid4()
    for i in range(5):
        await learning.record_accesses("s1", [m], T0 + timedelta(hours=i), keep=3)
    state = (await learning.memory_states("s1", [m]))[m]
    assert state.access_times == tuple(T0 + timedelta(hours=i) for i in (2, 3, 4))
    assert await learning.memory_states("s2", [m]) == {}


async def test_values_and_their_defaults(learning: LearningStore) -> None:
    a, b = uuid4(), uuid4()
    await learning.set_values("s1", {a: (0.7, 2)})
    states = await learning.memory_states("s1", [a, b])
    assert states == {a: MemoryState(0.7, 2, ())}
    await learning.set_values("s1", {a: (0.2, 3)})
    assert (await learning.memory_states("s1", [a]))[a].value == 0.2


async def test_edges_are_undirected_and_read_among_ids(learning: LearningStore) -> None:
    a, b, c = uuid4(), uuid4(), uuid4()
    await learning.upsert_edges("s1", [HebbianEdge(b, a, 0.3, T0), HebbianEdge(a, c, 0.5, T0)])
    got = await learning.edges("s1", [a, b])
    assert len(got) == 1
    assert {got[0].a, got[0].b} == {a, b} and got[0].weight == 0.3
    assert str(got[0].a) < str(got[0].b)
    await learning.upsert_edges("s1", [HebbianEdge(a, b, 0.4, T0 + timedelta(days=1))])
    (again,) = await learning.edges("s1", [b, a])
    assert (again.weight, again.last_strengthened) == (0.4, T0 + timedelta(days=1))
    assert await learning.edges("s2", [a, b]) == []
    await learning.forget("s1", [a])
    assert await learning.edges("s1", [a, b, c]) == []


async def test_edges_of_a_memory_are_its_strongest_at_either_end(
    learning: LearningStore,
) -> None:
    m, x, y, z = uuid4(), uuid4(), uuid4(), uuid4()
    await learning.upsert_edges(
        "s1",
        [
            HebbianEdge(m, x, 0.2, T0),
            HebbianEdge(y, m, 0.9, T0),
            HebbianEdge(z, m, 0.5, T0 + timedelta(days=1)),
            HebbianEdge(x, y, 0.8, T0),  # not m's
        ],
    )
    await learning.upsert_edges("s2", [HebbianEdge(m, x, 0.7, T0)])
    got = await learning.edges_of("s1", m, 10)
    assert [(HebbianEdge.key(e.a, e.b), e.weight) for e in got] == [
        (HebbianEdge.key(m, y), 0.9),
        (HebbianEdge.key(m, z), 0.5),
        (HebbianEdge.key(m, x), 0.2),
    ]
    assert got[1].last_strengthened == T0 + timedelta(days=1)
    assert [e.weight for e in await learning.edges_of("s1", m, 2)] == [0.9, 0.5]
    assert [e.weight for e in await learning.edges_of("s2", m, 10)] == [0.7]
    assert await learning.edges_of("s1", uuid4(), 10) == []


async def test_session_edges_lists_and_delete_edges_removes(learning: LearningStore) -> None:
    a, b, c = sorted((uuid4(), uuid4(), uuid4()), key=str)
    await learning.upsert_edges("s1", [HebbianEdge(a, b, 0.3, T0), HebbianEdge(c, a, 0.5, T0)])
    await learning.upsert_edges("s2", [HebbianEdge(a, b, 0.9, T0)])
    got = await learning.session_edges("s1")
    assert [(e.a, e.b, e.weight) for e in got] == [(a, b, 0.3), (a, c, 0.5)]
    # Either order of the ends names the edge; another session's twin edge stays.
    await learning.delete_edges("s1", [(b, a), (b, c)])
    assert [(e.a, e.b) for e in await learning.session_edges("s1")] == [(a, c)]
    assert [e.weight for e in await learning.session_edges("s2")] == [0.9]
    await learning.delete_edges("s1", [])
    assert len(await learning.session_edges("s1")) == 1


async def test_candidate_learning_reads_states_edges_and_encoder_at_once(
    learning: LearningStore,
) -> None:
    a, b, c, lone = uuid4(), uuid4(), uuid4(), uuid4()
    await learning.set_values("s1", {a: (0.8, 1)})
    await learning.record_accesses("s1", [b], T0, keep=3)
    await learning.upsert_edges("s1", [HebbianEdge(a, b, 0.3, T0), HebbianEdge(b, c, 0.6, T0)])
    await learning.save_encoder("s1", EncoderBlob(1, b"one"), expected_version=0)
    await learning.set_values("s2", {c: (0.1, 4)})  # another session's
    got = await learning.candidate_learning("s1", [a, b, c, lone], edges=True, ratings=False)
    assert got.states == await learning.memory_states("s1", [a, b, c, lone])
    assert got.states[a] == MemoryState(0.8, 1, ()) and got.states[b].access_times == (T0,)
    assert sorted((HebbianEdge.key(e.a, e.b), e.weight) for e in got.edges) == sorted(
        [(HebbianEdge.key(a, b), 0.3), (HebbianEdge.key(b, c), 0.6)]
    )
    assert got.encoder_version == 1
    # Edges only among the ids asked for, and none when not wanted or with one id.
    among = await learning.candidate_learning("s1", [a, b, lone, a], edges=True, ratings=False)
    assert [e.weight for e in among.edges] == [0.3]  # once, though a is named twice
    assert among.states == {a: got.states[a], b: got.states[b]}
    without = await learning.candidate_learning("s1", [a, b, c], edges=False, ratings=False)
    assert (without.edges, without.states) == ([], got.states)
    assert (await learning.candidate_learning("s1", [b], edges=True, ratings=False)).edges == []
    # Nothing of session s1 reaches s2; a session with nothing learned reads defaults.
    assert await learning.candidate_learning(
        "s2", [a, b, c], edges=True, ratings=False
    ) == CandidateLearning({c: MemoryState(0.1, 4, ())}, [], 0, {})
    assert await learning.candidate_learning(
        "s3", [], edges=True, ratings=False
    ) == CandidateLearning({}, [], 0, {})


def _rated(got: CandidateLearning) -> dict[object, list[tuple[object, float, list[float]]]]:
    """``ratings`` comparable whatever order a store returns them in."""
    return {
        m: sorted((r.entry.recall_id.int, r.entry.reward, r.query_vector.tolist()) for r in rs)
        for m, rs in got.ratings.items()
    }


async def test_candidate_learning_reads_ratings_with_their_query(learning: LearningStore) -> None:
    first, second = entry(minutes=0), entry(minutes=30)
    second = RecallLogEntry(
        second.recall_id,
        "s1",
        second.created_at,
        second.query_vector[::-1].copy(),
        first.memory_ids,
    )
    other = entry("s2", minutes=0)
    for e in (first, second, other):
        await learning.log_recall(e, None)
    a, b, c = first.memory_ids
    await learning.save_feedback(
        "s1",
        [
            FeedbackEntry(first.recall_id, a, 1.0, '{"labile": true}'),
            FeedbackEntry(first.recall_id, b, 0.0, '{"labile": true}'),
            FeedbackEntry(second.recall_id, a, 0.25, '{"labile": false}'),
        ],
    )
    # A twin rating in another session, on the same memory id: never read from s1.
    await learning.save_feedback("s2", [FeedbackEntry(other.recall_id, a, 0.5, "{}")])
    got = await learning.candidate_learning("s1", [a, b, c, uuid4()], edges=False, ratings=True)
    assert _rated(got) == {
        a: sorted(
            [
                (first.recall_id.int, 1.0, first.query_vector.tolist()),
                (second.recall_id.int, 0.25, second.query_vector.tolist()),
            ]
        ),
        b: [(first.recall_id.int, 0.0, first.query_vector.tolist())],
    }
    only_a = got.ratings[a]
    assert {r.entry.result for r in only_a} == {'{"labile": true}', '{"labile": false}'}
    assert all(isinstance(r, PastRating) and r.entry.memory_id == a for r in only_a)
    assert all(r.query_vector.dtype == np.float32 for r in only_a)
    # Not wanted, none read; the other session sees only its own.
    assert (await learning.candidate_learning("s1", [a], edges=False, ratings=False)).ratings == {}
    theirs = await learning.candidate_learning("s2", [a, b], edges=True, ratings=True)
    assert _rated(theirs) == {a: [(other.recall_id.int, 0.5, other.query_vector.tolist())]}
    # A recall that leaves the log takes its ratings with it.
    await learning.log_recall(entry(minutes=120), T0 + timedelta(minutes=10))
    left = await learning.candidate_learning("s1", [a, b], edges=False, ratings=True)
    assert _rated(left) == {a: [(second.recall_id.int, 0.25, second.query_vector.tolist())]}


async def test_feedback_is_stored_once(learning: LearningStore) -> None:
    r, m = uuid4(), uuid4()
    first = FeedbackEntry(r, m, 1.0, '{"x": 1}')
    assert await learning.save_feedback("s1", [first]) == 1
    assert await learning.save_feedback("s1", [FeedbackEntry(r, m, 0.0, '{"x": 2}')]) == 0
    assert await learning.feedback_entries("s1", r) == {m: first}
    assert await learning.feedback_entries("s2", r) == {}


async def test_encoder_compare_and_set(learning: LearningStore) -> None:
    assert await learning.encoder_version("s1") == 0
    assert await learning.load_encoder("s1") is None
    assert await learning.save_encoder("s1", EncoderBlob(1, b"one"), expected_version=0)
    assert not await learning.save_encoder("s1", EncoderBlob(2, b"two"), expected_version=0)
    assert await learning.save_encoder("s1", EncoderBlob(2, b"two"), expected_version=1)
    assert await learning.load_encoder("s1") == EncoderBlob(2, b"two")
    assert await learning.encoder_version("s2") == 0


async def test_delete_session_forgets_everything(learning: LearningStore) -> None:
    e = entry()
    m = e.memory_ids[0]
    await learning.log_recall(e, None)
    await learning.record_accesses("s1", [m], T0, keep=3)
    await learning.set_values("s1", {m: (0.9, 1)})
    await learning.upsert_edges("s1", [HebbianEdge(m, e.memory_ids[1], 0.2, T0)])
    await learning.save_feedback("s1", [FeedbackEntry(e.recall_id, m, 1.0, "{}")])
    await learning.save_encoder("s1", EncoderBlob(1, b"w"), 0)
    await learning.delete_session("s1")
    assert await learning.get_recall("s1", e.recall_id) is None
    assert await learning.memory_states("s1", list(e.memory_ids)) == {}
    assert await learning.edges("s1", list(e.memory_ids)) == []
    assert await learning.feedback_entries("s1", e.recall_id) == {}
    assert await learning.encoder_version("s1") == 0
