"""Contract of ``ConsolidationStore``: every record backend passes the same tests."""

from __future__ import annotations

from datetime import timedelta
from uuid import UUID, uuid4

import pytest

from tests.contract.test_entity_store import entity, relation
from tests.factories import T0
from ww.storage.factory import build_consolidation_store, entity_store
from ww.storage.ports import RecordStore
from ww.storage.ports.consolidation import (
    ConsolidatedEntity,
    ConsolidationStore,
    EdgeDecay,
    LinkType,
    MemoryLink,
)
from ww.storage.ports.entities import EntityStore

S1, S2 = "s1", "s2"


@pytest.fixture
def entities(side_records: RecordStore) -> EntityStore:
    return entity_store(side_records)


@pytest.fixture
def store(side_records: RecordStore) -> ConsolidationStore:
    return build_consolidation_store(side_records)


def link(source: UUID, target: UUID, minutes: int = 0, **kw: LinkType) -> MemoryLink:
    kind = kw.get("kind", LinkType.DUPLICATE_OF)
    return MemoryLink(source, target, kind, T0 + timedelta(minutes=minutes))


async def test_links_are_added_once_and_read_from_either_end(store: ConsolidationStore) -> None:
    a, b, c = uuid4(), uuid4(), uuid4()
    first, second = link(b, a, 1), link(a, c, 2)
    assert await store.add_links(S1, [first, second]) == 2
    assert await store.add_links(S1, [first, link(c, a, 3)]) == 1
    assert await store.add_links(S1, []) == 0
    assert await store.links(S1, a) == [first, second, link(c, a, 3)]
    assert await store.links(S1, b) == [first]
    assert await store.links(S2, a) == []


async def test_latest_links_are_those_of_the_newest_run(
    store: ConsolidationStore, entities: EntityStore
) -> None:
    assert await store.latest_links(S1) == []
    a, b, c = uuid4(), uuid4(), uuid4()
    await store.add_links(S1, [link(b, a, 1)])
    e = entity()
    await entities.insert_entity(S1, e)
    at = T0 + timedelta(minutes=5)
    await store.save_consolidated(S1, ConsolidatedEntity(e.id, "h", frozenset({a, c}), 0.7), at)
    dup = link(c, b, 5)
    await store.add_links(S1, [dup])
    await store.add_links(S2, [link(a, b, 9)])
    into = sorted(
        (MemoryLink(m, e.id, LinkType.CONSOLIDATED_INTO, at) for m in (a, c)),
        key=lambda k: str(k.source_id),
    )
    assert await store.latest_links(S1) == [*into, dup]
    assert await store.latest_links(S2) == [link(a, b, 9)]


async def test_save_consolidated_makes_membership_exact(
    store: ConsolidationStore, entities: EntityStore
) -> None:
    e = entity()
    await entities.insert_entity(S1, e)
    m1, m2, m3 = uuid4(), uuid4(), uuid4()
    await store.save_consolidated(S1, ConsolidatedEntity(e.id, "h1", frozenset({m1, m2}), 0.6), T0)
    await store.save_consolidated(S1, ConsolidatedEntity(e.id, "h2", frozenset({m2, m3}), 0.8), T0)
    [got] = await store.consolidated(S1)
    assert (got.entity_id, got.members_hash, got.members) == (e.id, "h2", frozenset({m2, m3}))
    assert got.confidence == pytest.approx(0.8)
    assert await store.links(S1, m1) == []
    assert [k.link_type for k in await store.links(S1, m3)] == [LinkType.CONSOLIDATED_INTO]
    assert await store.consolidated(S2) == []


async def test_consolidated_lists_only_current_entities(
    store: ConsolidationStore, entities: EntityStore
) -> None:
    old, gone = entity(name="old"), entity(name="gone")
    for e in (old, gone):
        await entities.insert_entity(S1, e)
        await store.save_consolidated(
            S1, ConsolidatedEntity(e.id, "h", frozenset({uuid4()}), 0.5), T0
        )
    t1 = T0 + timedelta(days=1)
    new = entity(name="new", lineage_id=old.lineage_id, version=2, valid_from=t1, created_at=t1)
    await entities.supersede_entity(S1, old.id, new)
    await entities.delete_entity(S1, gone.id)
    assert await store.consolidated(S1) == []


async def test_edges_page_in_id_order_and_decay_prunes(
    store: ConsolidationStore, entities: EntityStore
) -> None:
    ents = [entity(name=f"e{i}") for i in range(4)]
    for e in ents:
        await entities.insert_entity(S1, e)
    rels = [relation(ents[0].id, e.id, weight=0.5) for e in ents[1:]]
    for r in rels:
        await entities.insert_relation(S1, r)
    await entities.insert_entity(S2, other := entity(S2))
    await entities.insert_relation(S2, relation(other.id, other.id, S2))
    ids = sorted((r.id for r in rels), key=str)
    first = await store.edges(S1, None, 2)
    rest = await store.edges(S1, first[-1].id, 2)
    assert [w.id for w in first + rest] == ids
    assert all(w.since == T0 and w.weight == pytest.approx(0.5) for w in first + rest)
    t1 = T0 + timedelta(days=1)
    await store.decay_edges(S1, [EdgeDecay(ids[0], 0.25, False), EdgeDecay(ids[1], 0.01, True)], t1)
    after = {w.id: w for w in await store.edges(S1, None, 10)}
    assert set(after) == {ids[0], ids[2]}
    assert after[ids[0]].weight == pytest.approx(0.25)
    assert after[ids[0]].since == t1
    pruned = await entities.get_relation(S1, ids[1])
    assert pruned is not None and pruned.valid_to == t1


async def test_delete_session_removes_links_and_records(
    store: ConsolidationStore, entities: EntityStore
) -> None:
    e, keep = entity(), entity(S2)
    await entities.insert_entity(S1, e)
    await entities.insert_entity(S2, keep)
    m = uuid4()
    await store.save_consolidated(S1, ConsolidatedEntity(e.id, "h", frozenset({m}), 0.5), T0)
    await store.save_consolidated(S2, ConsolidatedEntity(keep.id, "h", frozenset({m}), 0.5), T0)
    await store.delete_session(S1)
    assert await store.links(S1, m) == []
    assert await store.consolidated(S1) == []
    assert [c.entity_id for c in await store.consolidated(S2)] == [keep.id]
