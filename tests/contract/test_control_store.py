"""Contract of ``ControlStore``: every backend of the record store runs it."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from tests.factories import T0
from ww.storage import RecordStore
from ww.storage.factory import control_store
from ww.storage.ports.control import AuditKind, ControlStore, Emergency, Level


@pytest.fixture
def store(side_records: RecordStore) -> ControlStore:
    return control_store(side_records)


async def test_a_fresh_store_is_at_version_zero_with_nothing_set(store: ControlStore) -> None:
    assert await store.version() == 0
    state = await store.state()
    assert (state.version, dict(state.flags), state.emergency) == (0, {}, Emergency())
    assert await store.audit(10) == []


async def test_a_flag_change_is_stored_audited_and_counted(store: ControlStore) -> None:
    # The first change replaces the start value; the second, the stored one.
    assert await store.set_flag("read_only_mode", True, start=False, who="ops", at=T0) is False
    later = T0 + timedelta(seconds=5)
    assert (
        await store.set_flag("read_only_mode", False, start=True, who="jwt:ann", at=later) is True
    )
    assert await store.set_flag("hebbian", True, start=True, who="ops", at=later) is True
    assert await store.version() == 3
    state = await store.state()
    assert (state.version, dict(state.flags)) == (3, {"read_only_mode": False, "hebbian": True})
    newest, middle, oldest = await store.audit(10)
    assert [e.id for e in (newest, middle, oldest)] == [3, 2, 1]
    assert (oldest.kind, oldest.name, oldest.old, oldest.new, oldest.who, oldest.at) == (
        AuditKind.FLAG,
        "read_only_mode",
        "false",
        "true",
        "ops",
        T0,
    )
    assert (middle.old, middle.new, middle.who, middle.at) == ("true", "false", "jwt:ann", later)
    assert (newest.name, newest.old, newest.new, newest.reason) == ("hebbian", "true", "true", None)


async def test_the_emergency_level_is_stored_and_audited(store: ControlStore) -> None:
    old = await store.set_emergency(Level.LOCKDOWN, "disk swap", who="ops", at=T0)
    assert old == Emergency()
    state = await store.state()
    assert state.emergency == Emergency(Level.LOCKDOWN, "disk swap", T0, "ops")
    old = await store.set_emergency(Level.NONE, None, who="admin", at=T0 + timedelta(1))
    assert old == Emergency(Level.LOCKDOWN, "disk swap", T0, "ops")
    assert (await store.state()).emergency.level is Level.NONE
    recovered, panicked = await store.audit(10)
    assert (panicked.kind, panicked.name, panicked.old, panicked.new, panicked.reason) == (
        AuditKind.EMERGENCY,
        "emergency",
        "NONE",
        "LOCKDOWN",
        "disk swap",
    )
    assert (recovered.old, recovered.new, recovered.reason, recovered.who) == (
        "LOCKDOWN",
        "NONE",
        None,
        "admin",
    )


async def test_the_audit_pages_newest_first(store: ControlStore) -> None:
    for i in range(5):
        await store.set_flag("fsrs", i % 2 == 0, start=False, who=f"k{i}", at=T0)
    first = await store.audit(2)
    assert [e.id for e in first] == [5, 4]
    second = await store.audit(2, before=first[-1].id)
    assert [e.id for e in second] == [3, 2]
    assert [e.who for e in await store.audit(10, before=2)] == ["k0"]


async def test_concurrent_changes_each_get_their_own_version(store: ControlStore) -> None:
    await asyncio.gather(
        *(store.set_flag(f"flag{i}", True, start=False, who="ops", at=T0) for i in range(6)),
        store.set_emergency(Level.LIMITED, "load", who="ops", at=T0),
    )
    assert await store.version() == 7
    assert sorted(e.id for e in await store.audit(10)) == list(range(1, 8))
    assert len((await store.state()).flags) == 6
