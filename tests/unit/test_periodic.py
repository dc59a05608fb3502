"""The background loop shared by maintenance and consolidation: a failing pass is logged
through the subclass's logger and the next pass still runs; ``_due`` false skips a pass."""

from __future__ import annotations

import asyncio
import logging

import pytest

from ww.engine.periodic import Periodic

_log = logging.getLogger("tests.periodic")


class Counting(Periodic):
    _log = _log
    _what = "counting"

    def __init__(self, fail_first: int, due: bool = True) -> None:
        self.interval_s = 0.0
        self.fail_first = fail_first
        self.due = due
        self.passes = 0

    async def run_once(self) -> None:
        self.passes += 1
        if self.passes <= self.fail_first:
            raise RuntimeError("boom")

    def _due(self) -> bool:
        return self.due


async def wait_for_passes(job: Counting, n: int) -> None:
    for _ in range(1000):
        if job.passes >= n:
            return
        await asyncio.sleep(0)
    raise AssertionError(f"only {job.passes} passes ran")


async def test_a_failing_pass_is_logged_and_the_loop_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    job = Counting(fail_first=2)
    with caplog.at_level(logging.ERROR, logger="tests.periodic"):
        job.start()
        await wait_for_passes(job, 3)
        await job.stop()
    failures = [r for r in caplog.records if r.name == "tests.periodic"]
    assert [r.getMessage() for r in failures] == ["counting pass failed"] * 2
    assert all(r.exc_info is not None for r in failures)


async def test_stop_ends_the_loop_and_can_be_called_twice() -> None:
    job = Counting(fail_first=0)
    job.start()
    await wait_for_passes(job, 1)
    await job.stop()
    ran = job.passes
    await asyncio.sleep(0.01)
    assert job.passes == ran
    await job.stop()


async def test_a_pass_that_is_not_due_does_not_run() -> None:
    job = Counting(fail_first=0, due=False)
    job.start()
    for _ in range(50):
        await asyncio.sleep(0)
    await job.stop()
    assert job.passes == 0
