"""What the gate lets through under each control state, over generated methods and paths,
on a real ControlPlane whose state is set through its SQLite store."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ww.api.auth import EXEMPT_PATHS
from ww.api.control_gate import READ_POSTS, blocked
from ww.control.flags import Flags
from ww.control.runtime import ControlPlane
from ww.storage.factory import control_store
from ww.storage.ports.control import Level
from ww.storage.sqlite.records import SQLiteRecordStore

METHODS = st.sampled_from(["GET", "HEAD", "OPTIONS", "POST", "PUT", "PATCH", "DELETE"])
SEGMENT = st.text(alphabet="abcdefghij-_0123456789", min_size=1, max_size=12)
PATHS = st.one_of(
    st.sampled_from(sorted(EXEMPT_PATHS | READ_POSTS)),
    st.lists(SEGMENT, min_size=1, max_size=4).map(lambda parts: "/api/v1/" + "/".join(parts)),
    st.lists(SEGMENT, max_size=3).map(lambda parts: "/api/v1/control/" + "/".join(parts)),
)
STATES = [
    (Level.NONE, {}),
    (Level.NONE, {"read_only_mode": True}),
    (Level.NONE, {"maintenance_mode": True}),
    (Level.LIMITED, {}),
    (Level.LOCKDOWN, {}),
    (Level.LIMITED, {"maintenance_mode": True}),
]


@pytest.fixture(scope="module")
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    loop = asyncio.new_event_loop()
    yield loop
    loop.close()


async def _plane(level: Level, flags: dict[str, bool]) -> AsyncIterator[ControlPlane]:
    records = SQLiteRecordStore(":memory:")
    await records.open()
    plane = ControlPlane(control_store(records), Flags(), lambda _: None)
    await plane.load()
    for name, on in flags.items():
        await plane.set_flag(name, on, who="test")
    if level is not Level.NONE:
        await plane.set_emergency(level, "drill", who="test")
    yield plane
    await records.close()


@pytest.mark.parametrize(("level", "flags"), STATES)
def test_the_gate_blocks_exactly_what_the_state_says(
    loop: asyncio.AbstractEventLoop, level: Level, flags: dict[str, bool]
) -> None:
    made = _plane(level, flags)
    plane = loop.run_until_complete(made.__anext__())
    lockdown = level is Level.LOCKDOWN or flags.get("maintenance_mode", False)
    read_only = lockdown or level is Level.LIMITED or flags.get("read_only_mode", False)

    @settings(max_examples=200, deadline=None, database=None)
    @given(method=METHODS, path=PATHS)
    def check(method: str, path: str) -> None:
        refusal = blocked(plane, method, path)
        control = path.startswith("/api/v1/control")
        write = method in {"POST", "PUT", "PATCH", "DELETE"} and not (
            method == "POST" and path in READ_POSTS
        )
        if control or (path in EXEMPT_PATHS and not write):
            assert refusal is None
        elif lockdown:
            assert refusal is not None and refusal[0] in {"emergency_lockdown", "maintenance"}
        else:
            assert (refusal is not None) == (read_only and write), (method, path, refusal)
        if refusal is not None and refusal[0].startswith("emergency"):
            assert "drill" in refusal[1]

    check()
    loop.run_until_complete(made.aclose())
