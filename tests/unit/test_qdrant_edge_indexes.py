"""Qdrant Edge's payload indexes: which fields get graph links, and directories made before."""

from __future__ import annotations

from pathlib import Path
from uuid import UUID, uuid4

import numpy as np
import qdrant_edge as qe

from tests.factories import at, make_episode, unit
from ww.models import EpisodeFilter
from ww.storage import QdrantEdgeIndex, VectorItem
from ww.storage.payload import episode_payload
from ww.storage.vector_base import GRAPH_FIELDS, PAYLOAD_INDEXES, Search

DIM = 8


def _schema(path: Path) -> dict[str, object]:
    shard = qe.EdgeShard.load(str(path), None)
    try:
        return {k: v.params for k, v in shard.info().payload_schema.items()}
    finally:
        shard.close()


def _items(n: int) -> list[VectorItem]:
    items = []
    for i in range(n):
        ep = make_episode("s1", speaker="alice" if i % 10 == 0 else "bob", timestamp=at(i))
        items.append(VectorItem(ep.id, unit(DIM, i), episode_payload(ep)))
    return items


async def test_only_the_fields_every_search_filters_on_get_graph_links(tmp_path: Path) -> None:
    index = QdrantEdgeIndex(tmp_path / "v", DIM)
    await index.open()
    await index.close()
    params = _schema(tmp_path / "v")
    assert set(params) == {field for field, _ in PAYLOAD_INDEXES}
    assert params["session_id"].is_tenant is True  # type: ignore[attr-defined]
    for field, _ in PAYLOAD_INDEXES:
        linked = params[field].enable_hnsw is not False  # type: ignore[attr-defined]
        assert linked == (field in GRAPH_FIELDS), field


async def test_a_directory_indexed_with_every_field_linked_still_searches(tmp_path: Path) -> None:
    """A data directory made when every indexed field had graph links (plain schema types)
    opens with the new parameters and answers a narrow filter from its old graph."""
    path = tmp_path / "v"
    config = qe.EdgeConfig(
        vectors=qe.EdgeVectorParams(
            size=DIM,
            distance=qe.Distance.Cosine,
            hnsw_config=qe.HnswIndexConfig(m=16, ef_construct=100, full_scan_threshold=1),
        ),
        optimizers=qe.EdgeOptimizersConfig(indexing_threshold=1),
    )
    shard = qe.EdgeShard.create(str(path), config)
    for field, integer in PAYLOAD_INDEXES:
        kind = qe.PayloadSchemaType.Integer if integer else qe.PayloadSchemaType.Keyword
        shard.update(qe.UpdateOperation.create_field_index(field, kind))
    items = _items(600)
    shard.update(
        qe.UpdateOperation.upsert_points(
            [qe.Point(id=str(i.id), vector=i.vector.tolist(), payload=i.payload) for i in items]
        )
    )
    shard.optimize()
    assert shard.info().indexed_vectors_count == len(items)
    shard.close()

    index = QdrantEdgeIndex(path, DIM, indexing_threshold_kb=1, full_scan_threshold_kb=1)
    await index.open()
    try:
        query = unit(DIM, 999)
        hits = await index.search("s1", query, EpisodeFilter(speaker="alice"), 10)
        alice = [i for i in items if i.payload["speaker"] == "alice"]
        scan = sorted(alice, key=lambda i: -float(np.dot(i.vector, query)))[:10]
        assert [h.id for h in hits] == [i.id for i in scan]
        assert await index.count("s1") == len(items)
    finally:
        await index.close()
    assert _schema(path)["speaker"].enable_hnsw is False  # type: ignore[attr-defined]


def test_acorn_is_asked_for_exactly_when_a_filter_names_an_unlinked_field() -> None:
    def needs(flt: EpisodeFilter, within: list[UUID] | None = None) -> bool:
        return Search("s1", unit(DIM, 1), flt, within).needs_acorn

    assert not needs(EpisodeFilter())
    assert not needs(EpisodeFilter(include_archived=True))
    assert needs(EpisodeFilter(speaker="alice"))
    assert needs(EpisodeFilter(project="p"))
    assert needs(EpisodeFilter(time_from=at(1)))
    assert needs(EpisodeFilter(metadata={"k": "v"}))
    assert needs(EpisodeFilter(), [uuid4()])  # ids and their parts' part_of


def test_only_a_filter_on_an_unlinked_field_widens_the_beam() -> None:
    def wide(flt: EpisodeFilter, within: list[UUID] | None = None) -> bool:
        return Search("s1", unit(DIM, 1), flt, within).wide_beam

    assert not wide(EpisodeFilter())
    assert not wide(EpisodeFilter(), [uuid4()])  # its own hit count sets the beam
    assert wide(EpisodeFilter(speaker="alice"))
    assert wide(EpisodeFilter(speaker="alice"), [uuid4()])
