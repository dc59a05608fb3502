"""``client.control`` (flags, audit, emergency, circuits) in both modes, with the admin key."""

from __future__ import annotations

import pytest
from fastapi import FastAPI

from tests.sdk.conftest import ADMIN_KEY, API_KEY, client
from ww.models.control import AuditKind, CircuitState, Level
from ww.sdk import (
    AsyncWorldWeaver,
    ConflictError,
    NotFoundError,
    PermissionDeniedError,
    UnavailableError,
)

# WW_ADMIN_KEY's key id: the audit records it, never the key.
ADMIN_ID = "WW_ADMIN_KEY"


def test_set_a_flag_then_read_it_and_its_audit(mode: str, secured_app: FastAPI) -> None:
    with client(mode, secured_app, admin_key=ADMIN_KEY) as ww:
        before = ww.control.flags.get("hebbian")
        change = ww.control.flags.set("hebbian", enabled=not before.enabled)
        assert change.previous is before.enabled
        assert change.flag.enabled is not before.enabled and change.flag.source == "runtime"
        now = ww.control.flags.get("hebbian")
        assert (now.enabled, now.source) == (not before.enabled, "runtime")
        listed = {f.name: f for f in ww.control.flags.list().flags}
        assert listed["hebbian"] == now
        entry = ww.control.audit.list(limit=1).items[0]
        assert (entry.kind, entry.name, entry.who) == (AuditKind.FLAG, "hebbian", ADMIN_ID)
        assert (entry.old, entry.new) == (str(before.enabled).lower(), str(now.enabled).lower())
        assert ADMIN_KEY not in entry.model_dump_json()


def test_the_audit_walks_every_page_newest_first(mode: str, secured_app: FastAPI) -> None:
    with client(mode, secured_app, admin_key=ADMIN_KEY) as ww:
        for enabled in (False, True, False):
            ww.control.flags.set("fsrs", enabled=enabled)
        first = ww.control.audit.list(limit=2)
        assert len(first.items) == 2 and first.next_cursor is not None
        rest = ww.control.audit.list(limit=2, cursor=first.next_cursor)
        assert rest.next_cursor is None
        walked = list(ww.control.audit.list_all(limit=1))
        assert walked == first.items + rest.items
        assert [e.new for e in walked] == ["false", "true", "false"]
        assert [e.id for e in walked] == sorted((e.id for e in walked), reverse=True)


def test_panic_limited_refuses_writes_until_recover(
    mode: str, secured_app: FastAPI, slept: list[float]
) -> None:
    # The default retries: an operator's block is not retried (its Retry-After is a hint for
    # people, not a fault that passes), so the refusal comes at once.
    with client(mode, secured_app, admin_key=ADMIN_KEY) as ww:
        change = ww.control.emergency.panic("LIMITED", reason="disk check")
        assert change.previous is Level.NONE
        assert (change.emergency.level, change.emergency.set_by) == (Level.LIMITED, ADMIN_ID)
        assert ww.control.emergency.get().reason == "disk check"
        with pytest.raises(UnavailableError) as caught:
            ww.episodes.create(content="a write while read-only")
        assert (caught.value.status_code, caught.value.code) == (503, "emergency_limited")
        assert caught.value.retry_after == 30
        assert slept == []
        assert ww.episodes.list().items == []  # reads still answer
        back = ww.control.emergency.recover()
        assert (back.previous, back.emergency.level) == (Level.LIMITED, Level.NONE)
        with pytest.raises(ConflictError):  # recover only lowers: LIMITED is above NONE
            ww.control.emergency.recover("LIMITED")
        assert ww.episodes.create(content="writes are back").content == "writes are back"
        kinds = [(e.kind, e.old, e.new, e.who) for e in ww.control.audit.list().items]
        assert kinds == [
            (AuditKind.EMERGENCY, "LIMITED", "NONE", ADMIN_ID),
            (AuditKind.EMERGENCY, "NONE", "LIMITED", ADMIN_ID),
        ]


def test_circuits_list_get_and_reset(mode: str, secured_app: FastAPI) -> None:
    with client(mode, secured_app, admin_key=ADMIN_KEY) as ww:
        names = [c.name for c in ww.control.circuits.list().circuits]
        assert names == ["database", "vectors", "embedder", "redis"]
        assert ww.control.circuits.get("vectors").state is CircuitState.CLOSED
        reset = ww.control.circuits.reset("database")
        assert (reset.name, reset.state, reset.failures) == ("database", CircuitState.CLOSED, 0)
        with pytest.raises(NotFoundError):
            ww.control.circuits.reset("no-such-circuit")
        with pytest.raises(NotFoundError):
            ww.control.flags.get("no_such_flag")


def test_the_control_plane_needs_the_admin_role(mode: str, secured_app: FastAPI) -> None:
    with client(mode, secured_app, api_key=API_KEY) as ww:
        with pytest.raises(PermissionDeniedError):
            ww.control.flags.set("hebbian", enabled=False)
        with pytest.raises(PermissionDeniedError):
            ww.control.emergency.panic("LOCKDOWN", reason="not mine to pull")


async def test_the_async_control_plane(aww: AsyncWorldWeaver) -> None:
    change = await aww.control.flags.set("actr", enabled=False)
    assert change.flag.enabled is False
    assert (await aww.control.flags.get("actr")).enabled is False
    entries = [e async for e in aww.control.audit.list_all(limit=1)]
    assert [(e.name, e.new) for e in entries] == [("actr", "false")]
    assert (await aww.control.emergency.get()).level is Level.NONE
    assert len((await aww.control.circuits.list()).circuits) == 4
