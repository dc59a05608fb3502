"""Congruence: Qdrant Edge agrees with the Qdrant server backend (qdrant-client local mode)
and with the Neo4j vector index, memories' parts included.

The same points, payload changes, deletes and queries go to both; every answer must be the
same ids in the same order with scores within 1e-5. Any difference is a bug in one adapter.
Each hypothesis example works in a session of its own, so the two indexes are opened once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import numpy as np
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from tests.contract.conftest import DIM, make_vector_index
from tests.factories import at, make_episode, unit
from ww.models import EpisodeContext, EpisodeFilter, Outcome
from ww.storage import ScoredId, VectorIndex, VectorItem
from ww.storage.payload import episode_payload

SCORE_TOL = 1e-5

# Vectors are seeded random unit vectors: distinct ones never tie to within float rounding
# (where each engine may round its own way), while a small pool shared by several points
# makes exact ties (same text, same vector) common, which is where engines differ.
_seed = st.integers(0, 2**16)
_speakers = st.sampled_from([None, "alice", "bob"])
_meta_values = st.sampled_from(["x", "1", 1, True, False])


@dataclass(frozen=True)
class Point:
    seed: int
    minute: int
    speaker: str | None
    outcome: Outcome
    project: str | None
    archived: bool
    meta: Any
    parts: list[int]  # seeds of the memory's further vectors


@st.composite
def _points(draw: st.DrawFn) -> list[Point]:
    pool = draw(st.lists(_seed, min_size=1, max_size=6))
    return draw(
        st.lists(
            st.builds(
                Point,
                seed=st.sampled_from(pool),
                minute=st.integers(0, 5),
                speaker=_speakers,
                outcome=st.sampled_from(list(Outcome)),
                project=st.sampled_from([None, "p1", "p2"]),
                archived=st.booleans(),
                meta=_meta_values,
                parts=st.lists(st.sampled_from(pool), max_size=2),
            ),
            min_size=1,
            max_size=24,
        )
    )


_FILTER_FIELDS: dict[str, st.SearchStrategy[Any]] = {
    "time_from": st.integers(0, 5).map(at),
    "time_to": st.integers(1, 6).map(at),
    "outcome": st.sampled_from(list(Outcome)),
    "speaker": st.sampled_from(["alice", "bob"]),
    "project": st.sampled_from(["p1", "p2"]),
    "metadata": _meta_values.map(lambda v: {"k": v}),
    "include_archived": st.booleans(),
}


@st.composite
def _filters(draw: st.DrawFn) -> EpisodeFilter:
    # Few conditions at once: with all of them most queries would match nothing.
    names = draw(st.sets(st.sampled_from(sorted(_FILTER_FIELDS)), max_size=3))
    return EpisodeFilter(**{n: draw(_FILTER_FIELDS[n]) for n in sorted(names)})


@dataclass(frozen=True)
class Query:
    vector: tuple[int] | int  # a fresh vector's seed, or the index of a stored point
    flt: EpisodeFilter
    limit: int
    within: list[int] | None  # indexes of points (out of range: a foreign id)


_queries = st.builds(
    Query,
    vector=st.one_of(st.tuples(_seed), st.integers(0, 23)),
    flt=_filters(),
    limit=st.integers(1, 30),
    within=st.one_of(st.none(), st.lists(st.integers(0, 30), max_size=8)),
)


@dataclass(frozen=True)
class Case:
    points: list[Point]
    queries: list[Query]
    archive: list[int]  # set_payload(archived=1) on these points, then query again
    delete: list[int]  # then delete these, then query again


_cases = st.builds(
    Case,
    points=_points(),
    queries=st.lists(_queries, min_size=1, max_size=4),
    archive=st.lists(st.integers(0, 23), max_size=4),
    delete=st.lists(st.integers(0, 23), max_size=4),
)


def _items(session: str, points: list[Point]) -> list[VectorItem]:
    out = []
    for p in points:
        ep = make_episode(
            session,
            timestamp=at(p.minute),
            speaker=p.speaker,
            outcome=p.outcome,
            context=EpisodeContext(project=p.project),
            archived=p.archived,
            metadata={"k": p.meta},
        )
        parts = tuple(unit(DIM, s) for s in p.parts)
        out.append(VectorItem(ep.id, unit(DIM, p.seed), episode_payload(ep), parts))
    return out


def _assert_same_hits(edge: list[ScoredId], other: list[ScoredId], what: str) -> None:
    assert [h.id for h in edge] == [h.id for h in other], f"{what}\nedge:  {edge}\nother: {other}"
    for e, loc in zip(edge, other, strict=True):
        assert abs(e.score - loc.score) <= SCORE_TOL, (what, e, loc)


class Pair:
    """Qdrant Edge and ``other``, opened once on one event loop for all examples of a test."""

    def __init__(self, tmp: Path, other: str, request: pytest.FixtureRequest) -> None:
        self.loop = asyncio.new_event_loop()
        self.edge = make_vector_index("qdrant_edge", tmp)
        self.other = make_vector_index(other, tmp, request)
        self.run(self.edge.open())
        self.run(self.other.open())

    def run(self, coro: Any) -> Any:
        return self.loop.run_until_complete(coro)

    def both(self, call: Callable[[VectorIndex], Any]) -> tuple[Any, Any]:
        return self.run(call(self.edge)), self.run(call(self.other))

    def close(self) -> None:
        self.run(self.edge.close())
        self.run(self.other.close())
        self.loop.close()


@pytest.fixture(params=["qdrant_local", "neo4j", "neo4j_hnsw"])
def pair(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Pair]:
    p = Pair(tmp_path, request.param, request)
    yield p
    p.close()


def _compare_queries(pair: Pair, session: str, items: list[VectorItem], case: Case) -> None:
    for q in case.queries:
        if isinstance(q.vector, int):
            query = items[q.vector % len(items)].vector
        else:
            query = unit(DIM, q.vector[0])
        within: list[UUID] | None = None
        if q.within is not None:
            within = [items[i].id if i < len(items) else uuid4() for i in q.within]
        edge, other = pair.both(
            lambda idx, query=query, q=q, within=within: idx.search(
                session, query, q.flt, q.limit, within=within
            )
        )
        _assert_same_hits(edge, other, f"search {q}")


@pytest.mark.slow
@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    # No shrinking: every step writes to both engines and shrinking took minutes on a
    # 2-core machine; a failure prints the query and both answers in full instead.
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
)
@given(case=_cases)
def test_edge_and_server_backends_agree(pair: Pair, case: Case) -> None:
    session = f"c-{uuid4().hex[:12]}"
    items = _items(session, case.points)
    pair.both(lambda idx: idx.upsert(session, items))

    edge_ids, other_ids = pair.both(lambda idx: idx.ids(session))
    assert edge_ids == other_ids == {i.id for i in items}
    ids = [i.id for i in items]
    edge_vecs, other_vecs = pair.both(lambda idx: idx.get_vectors(session, ids))
    assert set(edge_vecs) == set(other_vecs) == set(ids)
    for i in ids:
        np.testing.assert_allclose(edge_vecs[i], other_vecs[i], atol=1e-6)
    _compare_queries(pair, session, items, case)

    for n in case.archive:
        target = items[n % len(items)]
        pair.both(lambda idx, t=target: idx.set_payload(session, t.id, {"archived": 1}))
    _compare_queries(pair, session, items, case)

    gone = [items[n % len(items)].id for n in case.delete]
    pair.both(lambda idx: idx.delete(session, gone))
    assert pair.both(lambda idx: idx.count(session)) == (len(set(ids) - set(gone)),) * 2
    _compare_queries(pair, session, items, case)

    pair.both(lambda idx: idx.delete_session(session))
    assert pair.both(lambda idx: idx.ids(session)) == (set(), set())


def test_time_range_bounds_agree(pair: Pair) -> None:
    """Microsecond-exact bounds: ``time_from`` is inclusive, ``time_to`` exclusive, on both."""
    session = "bounds"
    stamps = [datetime.fromisoformat(f"2026-01-01T00:00:00.00000{i}+00:00") for i in range(3)]
    items = [
        VectorItem(ep.id, np.eye(DIM, dtype=np.float32)[0], episode_payload(ep))
        for ep in (make_episode(session, timestamp=t) for t in stamps)
    ]
    pair.both(lambda idx: idx.upsert(session, items))
    flt = EpisodeFilter(time_from=stamps[1], time_to=stamps[2])
    edge, other = pair.both(lambda idx: idx.search(session, items[0].vector, flt, 10))
    assert [h.id for h in edge] == [h.id for h in other] == [items[1].id]
