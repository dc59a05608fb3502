"""Contract of the ``EntityStore`` port: every backend passes the same tests."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from uuid import UUID, uuid4

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.factories import T0
from ww.engine.dynamics import Fsrs
from ww.models import IndexState
from ww.models.semantic import Entity, EntityFilter, EntityType, Relation, RelationType
from ww.storage.factory import entity_store
from ww.storage.ports import IdConflictError, InvalidCursorError, RecordStore
from ww.storage.ports.entities import (
    ACCESS_LOG_CAP,
    EntityAccess,
    EntityStore,
    RelationExistsError,
    VersionClosedError,
)
from ww.storage.sqlite.entities import SQLiteEntityStore
from ww.storage.sqlite.records import SQLiteRecordStore

S1, S2 = "s1", "s2"


@pytest.fixture
def store(side_records: RecordStore) -> EntityStore:
    return entity_store(side_records)


def entity(session: str = S1, name: str = "Python", **kw: Any) -> Entity:
    ident = kw.pop("id", uuid4())
    base: dict[str, Any] = {
        "id": ident,
        "session_id": session,
        "lineage_id": ident,
        "version": 1,
        "name": name,
        "entity_type": EntityType.TOOL,
        "summary": f"{name} summary",
        "valid_from": T0,
        "created_at": T0,
        "fsrs": Fsrs().new_state(T0),
    }
    base.update(kw)
    return Entity(**base)


def relation(source: UUID, target: UUID, session: str = S1, **kw: Any) -> Relation:
    base: dict[str, Any] = {
        "id": uuid4(),
        "session_id": session,
        "source_id": source,
        "target_id": target,
        "relation_type": RelationType.USES,
        "weight": 0.5,
        "created_at": T0,
        "last_strengthened": T0,
        "valid_from": T0,
    }
    base.update(kw)
    return Relation(**base)


async def test_insert_get_roundtrip_and_session_isolation(store: EntityStore) -> None:
    e = entity(details="long text", source="docs")
    await store.insert_entity(S1, e)
    assert await store.get_entity(S1, e.id) == e
    assert await store.get_entity(S2, e.id) is None
    assert await store.get_entities(S2, [e.id]) == {}
    with pytest.raises(ValueError):
        await store.insert_entity(S2, entity(S1))


async def test_creation_counts_as_first_access(store: EntityStore) -> None:
    e = entity()
    await store.insert_entity(S1, e)
    assert await store.access_times(S1, [e.id]) == {e.id: [T0]}
    assert await store.access_times(S2, [e.id]) == {e.id: []}


async def test_list_filters_by_type_and_pages_newest_first(store: EntityStore) -> None:
    made = []
    for i in range(5):
        kind = EntityType.PERSON if i % 2 else EntityType.TOOL
        e = entity(name=f"e{i}", entity_type=kind, valid_from=T0 + timedelta(minutes=i))
        await store.insert_entity(S1, e)
        made.append(e)
    await store.insert_entity(S2, entity(S2, "other"))
    seen: list[UUID] = []
    cursor = None
    while True:
        page = await store.list_entities(S1, EntityFilter(), 2, cursor)
        seen += [e.id for e in page.items]
        cursor = page.next_cursor
        if cursor is None:
            break
    assert seen == [e.id for e in reversed(made)]
    people = await store.list_entities(S1, EntityFilter(entity_type=EntityType.PERSON), 10, None)
    assert [e.name for e in people.items] == ["e3", "e1"]


async def test_supersede_closes_old_version_and_copies_relations(store: EntityStore) -> None:
    old, other = entity(name="v1"), entity(name="other")
    await store.insert_entity(S1, old)
    await store.insert_entity(S1, other)
    await store.insert_relation(S1, relation(old.id, other.id, weight=0.7))
    t1 = T0 + timedelta(days=1)
    new = entity(name="v2", lineage_id=old.lineage_id, version=2, valid_from=t1, created_at=t1)
    closed = await store.supersede_entity(S1, old.id, new)
    assert closed.valid_to == t1
    assert (await store.get_entity(S1, old.id)).valid_to == t1  # type: ignore[union-attr]
    assert [e.name for e in await store.history(S1, old.lineage_id)] == ["v1", "v2"]
    # Current versions only by default; as of before the change, the old one.
    current = await store.list_entities(S1, EntityFilter(), 10, None)
    assert {e.name for e in current.items} == {"v2", "other"}
    then = await store.list_entities(S1, EntityFilter(as_of=T0 + timedelta(hours=1)), 10, None)
    assert {e.name for e in then.items} == {"v1", "other"}
    every = await store.list_entities(S1, EntityFilter(include_closed=True), 10, None)
    assert len(every.items) == 3
    # The relation moved to the new version; the old one's is closed at t1.
    rels = await store.relations_of(S1, new.id)
    assert [(r.source_id, r.target_id, r.weight) for r in rels] == [(new.id, other.id, 0.7)]
    old_rels = await store.relations_of(S1, old.id)
    assert [r.valid_to for r in old_rels] == [t1]
    assert await store.adjacency(S1, [other.id]) == {other.id: [(new.id, 0.7)]}
    with pytest.raises(VersionClosedError):
        await store.supersede_entity(S1, old.id, entity(lineage_id=old.lineage_id, version=3))
    with pytest.raises(KeyError):
        await store.supersede_entity(S2, new.id, entity(S2, lineage_id=new.lineage_id))


async def test_update_in_place_reindexes_keywords(store: EntityStore) -> None:
    e = entity(name="Lantern", summary="gives light")
    await store.insert_entity(S1, e)
    assert [s.id for s in await store.keyword_search(S1, "light", EntityFilter(), 5)] == [e.id]
    changed = e.model_copy(update={"summary": "holds a flame"})
    assert await store.update_entity(S1, changed)
    assert await store.keyword_search(S1, "light", EntityFilter(), 5) == []
    assert [s.id for s in await store.keyword_search(S1, "flame", EntityFilter(), 5)] == [e.id]
    assert not await store.update_entity(S2, changed.model_copy(update={"session_id": S2}))


async def test_keyword_search_is_per_session_and_filtered(store: EntityStore) -> None:
    a = entity(name="Granite", summary="a hard rock", entity_type=EntityType.CONCEPT)
    b = entity(name="Granite Inc", summary="rock company", entity_type=EntityType.ORGANIZATION)
    await store.insert_entity(S1, a)
    await store.insert_entity(S1, b)
    await store.insert_entity(S2, entity(S2, "Granite"))
    hits = await store.keyword_search(S1, "granite rock", EntityFilter(), 10)
    assert {h.id for h in hits} == {a.id, b.id}
    assert all(h.score > 0 for h in hits)
    org = await store.keyword_search(
        S1, "granite", EntityFilter(entity_type=EntityType.ORGANIZATION), 10
    )
    assert [h.id for h in org] == [b.id]
    assert await store.keyword_search(S1, "the of", EntityFilter(), 10) == []


async def test_access_log_is_capped_newest_first(store: EntityStore) -> None:
    e = entity()
    await store.insert_entity(S1, e)
    fsrs = Fsrs()
    for i in range(1, ACCESS_LOG_CAP + 10):
        at = T0 + timedelta(minutes=i)
        upd = EntityAccess(e.id, fsrs.new_state(at), i, at)
        await store.record_access(S1, [upd], at)
    times = (await store.access_times(S1, [e.id]))[e.id]
    assert len(times) == ACCESS_LOG_CAP
    assert times[0] == T0 + timedelta(minutes=ACCESS_LOG_CAP + 9)
    assert times == sorted(times, reverse=True)
    got = await store.get_entity(S1, e.id)
    assert got is not None and got.access_count == ACCESS_LOG_CAP + 9


async def test_relations_crud_duplicates_and_isolation(store: EntityStore) -> None:
    a, b = entity(name="a"), entity(name="b")
    await store.insert_entity(S1, a)
    await store.insert_entity(S1, b)
    r = relation(a.id, b.id, weight=0.9)
    await store.insert_relation(S1, r)
    with pytest.raises(RelationExistsError):
        await store.insert_relation(S1, relation(a.id, b.id))
    await store.insert_relation(S1, relation(a.id, b.id, relation_type=RelationType.CAUSES))
    assert await store.get_relation(S1, r.id) == r
    assert await store.get_relation(S2, r.id) is None
    assert len(await store.relations_of(S1, b.id)) == 2
    assert await store.relations_of(S2, b.id) == []
    assert not await store.delete_relation(S2, r.id)
    assert await store.delete_relation(S1, r.id)
    assert not await store.delete_relation(S1, r.id)


async def test_deleting_an_entity_removes_its_relations(store: EntityStore) -> None:
    a, b = entity(name="a"), entity(name="b")
    await store.insert_entity(S1, a)
    await store.insert_entity(S1, b)
    await store.insert_relation(S1, relation(a.id, b.id))
    assert not await store.delete_entity(S2, a.id)
    assert await store.delete_entity(S1, a.id)
    assert await store.relations_of(S1, b.id) == []
    assert await store.access_times(S1, [a.id]) == {a.id: []}
    assert await store.keyword_search(S1, "a summary", EntityFilter(), 5) != []  # b remains


async def test_index_state_and_reconciler_queries(store: EntityStore) -> None:
    a, b = entity(name="a"), entity(name="b")
    await store.insert_entity(S1, a)
    await store.insert_entity(S1, b)
    assert {e.id for e in await store.pending_entities(S1, 10)} == {a.id, b.id}
    assert await store.indexed_count(S1) == 0
    await store.mark_indexed(S1, [a.id])
    assert await store.indexed_ids(S1) == {a.id}
    assert await store.indexed_count(S1) == 1
    assert await store.indexed_count(S2) == 0
    assert (await store.get_entity(S1, a.id)).index_state == IndexState.INDEXED  # type: ignore[union-attr]
    await store.mark_pending(S1, [a.id])
    assert await store.indexed_ids(S1) == set()
    assert await store.indexed_count(S1) == 0
    assert await store.existing_ids(S1, [a.id, uuid4()]) == {a.id}
    assert await store.existing_ids(S2, [a.id]) == set()
    assert await store.list_sessions() == [S1]


async def test_matching_ids_caps(store: EntityStore) -> None:
    for i in range(3):
        await store.insert_entity(S1, entity(name=f"e{i}"))
    assert len(await store.matching_ids(S1, EntityFilter(), 3) or ()) == 3
    assert await store.matching_ids(S1, EntityFilter(), 2) is None


async def test_delete_session_removes_everything(store: EntityStore) -> None:
    a, b = entity(name="a"), entity(name="b")
    keep = entity(S2, "keep")
    for e in (a, b):
        await store.insert_entity(S1, e)
    await store.insert_entity(S2, keep)
    await store.insert_relation(S1, relation(a.id, b.id))
    await store.delete_session(S1)
    assert await store.get_entities(S1, [a.id, b.id]) == {}
    assert await store.keyword_search(S1, "summary", EntityFilter(), 5) == []
    assert await store.get_entity(S2, keep.id) == keep
    assert await store.list_sessions() == [S2]


@given(
    placements=st.lists(
        st.tuples(st.sampled_from([S1, S2]), st.sampled_from(["granite", "lantern", "ember"])),
        min_size=1,
        max_size=8,
    )
)
@settings(max_examples=20, deadline=None, suppress_health_check=list(HealthCheck))
async def test_property_no_read_crosses_sessions(placements: list[tuple[str, str]]) -> None:
    records = SQLiteRecordStore(":memory:")
    await records.open()
    try:
        store = SQLiteEntityStore(records.db)
        owned: dict[str, set[UUID]] = {S1: set(), S2: set()}
        prev: dict[str, UUID] = {}
        for session, word in placements:
            e = entity(session, word)
            await store.insert_entity(session, e)
            owned[session].add(e.id)
            if session in prev:
                await store.insert_relation(session, relation(prev[session], e.id, session))
            prev[session] = e.id
        everything = owned[S1] | owned[S2]
        for session, other in ((S1, S2), (S2, S1)):
            listed = await store.list_entities(session, EntityFilter(), 100, None)
            assert {e.id for e in listed.items} == owned[session]
            found = await store.keyword_search(session, "granite lantern ember", EntityFilter(), 50)
            assert {h.id for h in found} <= owned[session]
            assert set(await store.get_entities(session, list(everything))) == owned[session]
            adj = await store.adjacency(session, list(everything))
            reached = {n for pairs in adj.values() for n, _ in pairs}
            assert reached <= owned[session]
            assert not any(adj[i] for i in owned[other])
            assert await store.existing_ids(session, list(owned[other])) == set()
    finally:
        await records.close()


# -- what export and import use --------------------------------------------------------------
async def test_list_relations_pages_every_relation_of_the_session(store: EntityStore) -> None:
    a, b, c = entity(name="a"), entity(name="b"), entity(name="c")
    other_a, other_b = entity(S2, "x"), entity(S2, "y")
    for e in (a, b, c):
        await store.insert_entity(S1, e)
    for e in (other_a, other_b):
        await store.insert_entity(S2, e)
    made = [relation(a.id, b.id), relation(b.id, c.id), relation(a.id, c.id)]
    for r in made:
        await store.insert_relation(S1, r)
    await store.insert_relation(S2, relation(other_a.id, other_b.id, S2))
    # A supersede closes b's relations and copies them: closed ones are listed too.
    await store.supersede_entity(S1, b.id, entity(name="b2", valid_from=T0 + timedelta(days=1)))

    seen: list[Relation] = []
    cursor = None
    while True:
        page = await store.list_relations(S1, 2, cursor)
        assert len(page.items) <= 2
        seen += page.items
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert [str(r.id) for r in seen] == sorted(str(r.id) for r in seen)
    assert len(seen) == 5 and {r.session_id for r in seen} == {S1}
    assert {r.id for r in made} <= {r.id for r in seen}
    assert sum(r.valid_to is not None for r in seen) == 2
    assert (await store.list_relations("nobody", 10, None)).items == []
    with pytest.raises(InvalidCursorError):
        await store.list_relations(S1, 2, "not-a-cursor")


async def test_replace_access_times_is_exact_capped_and_session_bound(store: EntityStore) -> None:
    e, other = entity(), entity(S2)
    await store.insert_entity(S1, e)
    await store.insert_entity(S2, other)
    times = [T0 + timedelta(hours=h) for h in range(ACCESS_LOG_CAP + 5)]
    await store.replace_access_times(S1, {e.id: times, other.id: [T0]})
    got = (await store.access_times(S1, [e.id]))[e.id]
    assert got == sorted(times, reverse=True)[:ACCESS_LOG_CAP]  # creation access gone too
    assert (await store.access_times(S2, [other.id]))[other.id] == [other.created_at]
    await store.replace_access_times(S1, {e.id: []})
    assert (await store.access_times(S1, [e.id]))[e.id] == []


async def test_insert_with_an_id_of_another_session_conflicts(store: EntityStore) -> None:
    e = entity()
    await store.insert_entity(S1, e)
    with pytest.raises(IdConflictError):
        await store.insert_entity(S2, e.model_copy(update={"session_id": S2}))
    assert await store.get_entity(S2, e.id) is None
    assert await store.get_entity(S1, e.id) == e
