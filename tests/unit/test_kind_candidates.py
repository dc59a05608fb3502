"""The candidate step of entity and skill recall (``ww.engine.kinds.candidates``)."""

from __future__ import annotations

from unittest.mock import create_autospec
from uuid import uuid4

from tests.factories import unit
from ww.engine.kinds import candidates
from ww.storage import QdrantEdgeIndex
from ww.storage.ports import ScoredId, StoreUnavailableError


async def test_keyword_only_candidates_the_index_cannot_score_degrade_the_recall() -> None:
    # The index answering the dense search and then failing the keyword-only candidates'
    # search is a timing no real store shows on demand: the stand-in is autospec'd to the
    # real class (entity and skill recall pass the dense hits in; this is the second call).
    index = create_autospec(QdrantEdgeIndex, instance=True)
    index.search.side_effect = StoreUnavailableError("vectors", "timed out")
    a, b = uuid4(), uuid4()
    found = await candidates(index, "s1", unit(8, 1), [ScoredId(a, 0.9)], [ScoredId(b, 2.0)])
    assert index.search.await_args is not None
    assert index.search.await_args.kwargs["within"] == [b]
    assert found.degraded
    assert found.ids == [a, b] and found.cosine == {a: 0.9} and b in found.keyword
