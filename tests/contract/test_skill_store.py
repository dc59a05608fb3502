"""Contract of the ``SkillStore`` port: every backend passes the same tests."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from uuid import uuid4

import pytest
from neo4j import GraphDatabase

from tests.factories import T0
from tests.neo4j_launcher import Neo4jProcess
from ww.engine.dynamics import Fsrs
from ww.models import FSRSState
from ww.models.procedural import Skill, SkillExecution, SkillStep, SkillVersion
from ww.storage.factory import skill_store
from ww.storage.ports import IdConflictError, InvalidCursorError, RecordStore
from ww.storage.ports.skills import SkillAccess, SkillFilter, SkillStore

S1, S2 = "s1", "s2"


@pytest.fixture
def store(side_records: RecordStore) -> SkillStore:
    return skill_store(side_records)


def skill(session: str = S1, name: str = "deploy", **kw: Any) -> Skill:
    base: dict[str, Any] = {
        "id": uuid4(),
        "session_id": session,
        "name": name,
        "domain": "ops",
        "task": f"{name} the service",
        "steps": [SkillStep(order=1, action="build", tool="make", parameters={"j": 2})],
        "script": "1. build",
        "script_generated": True,
        "created_at": T0,
        "updated_at": T0,
    }
    base.update(kw)
    return Skill(**base)


def execution(s: Skill, success: bool, minutes: int = 1, **kw: Any) -> SkillExecution:
    base: dict[str, Any] = {
        "id": uuid4(),
        "skill_id": s.id,
        "skill_version": s.version,
        "success": success,
        "duration_ms": 12.5,
        "failed_step": None,
        "error": None,
        "executed_at": T0 + timedelta(minutes=minutes),
    }
    base.update(kw)
    return SkillExecution(**base)


async def test_roundtrip_and_isolation(store: SkillStore) -> None:
    s = skill(trigger_pattern="when deploying")
    await store.insert_skill(S1, s)
    assert await store.get_skill(S1, s.id) == s
    assert await store.get_skill(S2, s.id) is None
    assert await store.access_times(S1, [s.id]) == {s.id: [T0]}
    with pytest.raises(ValueError):
        await store.insert_skill(S2, skill(S1))


async def test_list_filters_domain_and_deprecated_and_pages(store: SkillStore) -> None:
    made = []
    for i in range(5):
        s = skill(
            name=f"k{i}",
            domain="ops" if i < 3 else "dev",
            deprecated=i == 0,
            created_at=T0 + timedelta(minutes=i),
        )
        await store.insert_skill(S1, s)
        made.append(s)
    live = await store.list_skills(S1, SkillFilter(), 10, None)
    assert [s.name for s in live.items] == ["k4", "k3", "k2", "k1"]
    ops = await store.list_skills(S1, SkillFilter(domain="ops", include_deprecated=True), 10, None)
    assert [s.name for s in ops.items] == ["k2", "k1", "k0"]
    names, cursor = [], None
    while True:
        page = await store.list_skills(S1, SkillFilter(include_deprecated=True), 2, cursor)
        names += [s.name for s in page.items]
        if (cursor := page.next_cursor) is None:
            break
    assert names == ["k4", "k3", "k2", "k1", "k0"]
    assert (await store.list_skills(S2, SkillFilter(), 10, None)).items == []


async def test_update_keeps_the_previous_version(store: SkillStore) -> None:
    v1 = skill()
    await store.insert_skill(S1, v1)
    t1 = T0 + timedelta(hours=1)
    v2 = v1.model_copy(update={"task": "ship the service", "version": 2, "updated_at": t1})
    assert await store.update_skill(S1, v2, previous=v1)
    assert await store.get_skill(S1, v1.id) == v2
    versions = await store.versions(S1, v1.id)
    assert [(v.version, v.replaced_at, v.skill) for v in versions] == [(1, t1, v1)]
    assert await store.versions(S2, v1.id) == []
    assert not await store.update_skill(S2, v2.model_copy(update={"session_id": S2}))
    # Keyword index follows the update.
    assert [h.id for h in await store.keyword_search(S1, "ship", SkillFilter(), 5)] == [v1.id]


async def test_executions_update_counters_and_are_listed_newest_first(store: SkillStore) -> None:
    s = skill()
    await store.insert_skill(S1, s)
    first = execution(s, True, 1)
    after = s.model_copy(update={"successes": 1, "execution_count": 1, "access_count": 1})
    assert await store.record_execution(S1, after, first)
    second = execution(s, False, 2, failed_step=1, error="boom")
    after2 = after.model_copy(update={"failures": 1, "execution_count": 2, "access_count": 2})
    assert await store.record_execution(S1, after2, second)
    got = await store.get_skill(S1, s.id)
    assert got is not None
    assert (got.successes, got.failures, got.execution_count) == (1, 1, 2)
    assert got.success_rate == pytest.approx(0.5)
    assert got.last_executed == second.executed_at
    assert await store.executions(S1, s.id, 10) == [second, first]
    assert await store.executions(S2, s.id, 10) == []
    assert len((await store.access_times(S1, [s.id]))[s.id]) == 3  # creation + 2 runs
    assert not await store.record_execution(S2, after2.model_copy(update={"session_id": S2}), first)


async def test_keyword_search_domain_filter_and_deprecation(store: SkillStore) -> None:
    a = skill(name="rotate keys", domain="security")
    b = skill(name="rotate logs", domain="ops", deprecated=True)
    await store.insert_skill(S1, a)
    await store.insert_skill(S1, b)
    assert [h.id for h in await store.keyword_search(S1, "rotate", SkillFilter(), 5)] == [a.id]
    both = await store.keyword_search(S1, "rotate", SkillFilter(include_deprecated=True), 5)
    assert {h.id for h in both} == {a.id, b.id}
    ops = SkillFilter(domain="ops", include_deprecated=True)
    assert [h.id for h in await store.keyword_search(S1, "rotate", ops, 5)] == [b.id]
    assert await store.keyword_search(S2, "rotate", SkillFilter(), 5) == []
    assert await store.filter_ids(S1, [a.id, b.id], SkillFilter()) == {a.id}


async def test_delete_and_delete_session(store: SkillStore) -> None:
    a, b, c = skill(name="a"), skill(name="b"), skill(S2, "c")
    await store.insert_skill(S1, a)
    await store.insert_skill(S1, b)
    await store.insert_skill(S2, c)
    await store.record_execution(S1, a, execution(a, True))
    assert not await store.delete_skill(S2, a.id)
    assert await store.delete_skill(S1, a.id)
    assert await store.get_skill(S1, a.id) is None
    assert await store.executions(S1, a.id, 5) == []
    await store.delete_session(S1)
    assert await store.get_skill(S1, b.id) is None
    assert await store.get_skill(S2, c.id) == c
    assert await store.list_sessions() == [S2]


async def test_index_state_queries(store: SkillStore) -> None:
    a = skill()
    await store.insert_skill(S1, a)
    assert [s.id for s in await store.pending_skills(S1, 5)] == [a.id]
    await store.mark_indexed(S1, [a.id])
    assert await store.pending_skills(S1, 5) == []
    assert await store.indexed_ids(S1) == {a.id}
    assert await store.indexed_count(S1) == 1
    assert await store.indexed_count(S2) == 0
    await store.mark_pending(S1, [a.id])
    assert await store.indexed_ids(S1) == set()
    assert await store.indexed_count(S1) == 0
    assert await store.existing_ids(S1, [a.id, uuid4()]) == {a.id}
    later = T0 + timedelta(hours=1)
    await store.record_access(S1, [SkillAccess(a.id, a.fsrs, 5, later)], later)
    got = await store.get_skill(S1, a.id)
    assert got is not None and got.access_count == 5


# -- FSRS state ------------------------------------------------------------------------------
REVIEWED = FSRSState(
    stability=3.25, difficulty=6.5, last_review=T0 + timedelta(hours=2), reps=2, lapses=1
)


async def test_fsrs_state_round_trips(store: SkillStore) -> None:
    s = skill(fsrs=REVIEWED)
    await store.insert_skill(S1, s)
    got = await store.get_skill(S1, s.id)
    assert got is not None and got.fsrs == REVIEWED and got == s
    listed = await store.list_skills(S1, SkillFilter(), 10, None)
    assert [x.fsrs for x in listed.items] == [REVIEWED]
    # An edit keeps the state it is given; the replaced version keeps its own.
    again = REVIEWED.model_copy(update={"stability": 9.5, "reps": 3})
    edited = s.model_copy(update={"version": 2, "fsrs": again})
    assert await store.update_skill(S1, edited, previous=s)
    got = await store.get_skill(S1, s.id)
    assert got is not None and got.fsrs == again
    assert [v.skill.fsrs for v in await store.versions(S1, s.id)] == [REVIEWED]


async def test_record_access_stores_the_review(store: SkillStore) -> None:
    a, b = skill(name="a"), skill(name="b")
    await store.insert_skill(S1, a)
    await store.insert_skill(S1, b)
    at = T0 + timedelta(days=1)
    await store.record_access(S1, [SkillAccess(a.id, REVIEWED, 7, at)], at)
    await store.record_access(S2, [SkillAccess(b.id, REVIEWED, 9, at)], at)  # not its session
    got = await store.get_skills(S1, [a.id, b.id])
    assert got[a.id].fsrs == REVIEWED
    assert (got[a.id].access_count, got[a.id].last_accessed) == (7, at)
    assert got[b.id] == b
    assert (await store.access_times(S1, [a.id]))[a.id] == [at, a.created_at]


@pytest.mark.parametrize("side_records", ["neo4j"], indirect=True)
async def test_neo4j_skill_written_without_fsrs_reads_the_default_state(
    store: SkillStore, neo4j_server: Neo4jProcess
) -> None:
    s = skill(fsrs=REVIEWED)
    await store.insert_skill(S1, s)
    with GraphDatabase.driver(neo4j_server.uri, auth=None) as driver:
        driver.execute_query(
            "MATCH (s:WwSkill {id: $id}) "
            "REMOVE s.stability, s.difficulty, s.last_review, s.reps, s.lapses",
            {"id": str(s.id)},
        )
    got = await store.get_skill(S1, s.id)
    assert got is not None
    assert got.fsrs == Fsrs().new_state(s.created_at)
    assert got.model_copy(update={"fsrs": REVIEWED}) == s


# -- what export and import use --------------------------------------------------------------
async def test_list_executions_pages_the_session_by_id(store: SkillStore) -> None:
    a, b, other = skill(name="a"), skill(name="b"), skill(S2, "c")
    for s in (a, b):
        await store.insert_skill(S1, s)
    await store.insert_skill(S2, other)
    made = [execution(a, True, 1), execution(a, False, 2), execution(b, True, 3)]
    for e in made:
        await store.record_execution(S1, a if e.skill_id == a.id else b, e)
    await store.record_execution(S2, other, execution(other, True))
    seen: list[SkillExecution] = []
    cursor = None
    while True:
        page = await store.list_executions(S1, 2, cursor)
        seen += page.items
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert seen == sorted(made, key=lambda e: str(e.id))
    with pytest.raises(InvalidCursorError):
        await store.list_executions(S1, 2, "junk")


async def test_restore_versions_upserts_and_stays_in_the_session(store: SkillStore) -> None:
    s, other = skill(version=3), skill(S2)
    await store.insert_skill(S1, s)
    await store.insert_skill(S2, other)
    v1 = SkillVersion(
        version=1, replaced_at=T0, skill=s.model_copy(update={"version": 1, "task": "v1"})
    )
    v2 = SkillVersion(version=2, replaced_at=T0 + timedelta(hours=1), skill=s.model_copy())
    foreign = SkillVersion(version=1, replaced_at=T0, skill=other)
    assert await store.restore_versions(S1, [v2, v1, foreign]) == 2
    assert await store.versions(S1, s.id) == [v1, v2]
    assert await store.versions(S2, other.id) == []
    moved = v1.model_copy(update={"replaced_at": T0 + timedelta(minutes=5)})
    assert await store.restore_versions(S1, [moved]) == 1  # same key: replaced, not added
    assert await store.versions(S1, s.id) == [moved, v2]
    assert await store.get_skill(S1, s.id) == s  # the skill itself is untouched


async def test_restore_executions_touch_no_counters_and_upsert(store: SkillStore) -> None:
    s, other = skill(), skill(S2)
    await store.insert_skill(S1, s)
    await store.insert_skill(S2, other)
    times_before = await store.access_times(S1, [s.id])
    done = execution(s, False, 7, failed_step=1, error="boom")
    assert await store.restore_executions(S1, [done, execution(other, True)]) == 1
    assert await store.restore_executions(S1, [done]) == 1
    assert await store.executions(S1, s.id, 10) == [done]
    assert await store.executions(S2, other.id, 10) == []
    assert await store.get_skill(S1, s.id) == s
    assert await store.access_times(S1, [s.id]) == times_before
    theirs = execution(other, True)
    await store.restore_executions(S2, [theirs])
    with pytest.raises(IdConflictError):
        await store.restore_executions(S1, [theirs.model_copy(update={"skill_id": s.id})])
    assert await store.executions(S2, other.id, 10) == [theirs]


async def test_replace_access_times_and_id_conflicts(store: SkillStore) -> None:
    s = skill()
    await store.insert_skill(S1, s)
    times = [T0 + timedelta(minutes=m) for m in (3, 1, 2)]
    await store.replace_access_times(S1, {s.id: times})
    assert (await store.access_times(S1, [s.id]))[s.id] == sorted(times, reverse=True)
    await store.replace_access_times(S2, {s.id: [T0]})  # not a skill of S2: ignored
    assert (await store.access_times(S1, [s.id]))[s.id] == sorted(times, reverse=True)
    with pytest.raises(IdConflictError):
        await store.insert_skill(S2, s.model_copy(update={"session_id": S2}))
    assert await store.get_skill(S2, s.id) is None
