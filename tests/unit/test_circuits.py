"""The circuit breaker's state machine, its guard over port objects, and the registry.

Time is a ManualClock: nothing sleeps, every timeout is crossed by advancing the clock.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import timedelta

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from tests.conftest import ManualClock
from ww.config import Settings
from ww.control.circuits import (
    CIRCUIT_NAMES,
    Breaker,
    CircuitOpenError,
    Circuits,
    CircuitState,
    embedder_failure,
    store_failure,
)
from ww.embedding import EmbeddingError
from ww.storage.diskspace import InsufficientStorageError
from ww.storage.guarded import alike, gate_of, guarded, unwrap
from ww.storage.ports import InvalidCursorError, StoreUnavailableError

THRESHOLD, TIMEOUT = 3, 10.0


class Dependency:
    """A port-like object whose next answers are set by the test; counts the calls that
    reached it."""

    def __init__(self) -> None:
        self.calls = 0
        self.closed = False
        self.dimension = 7
        self.fail_with: BaseException | None = None

    async def read(self, x: int) -> int:
        self.calls += 1
        if self.fail_with is not None:
            raise self.fail_with
        return x * 2

    async def close(self) -> None:
        self.closed = True

    def describe(self) -> str:
        return "plain"


DOWN = StoreUnavailableError("neo4j", "ServiceUnavailable")


def _breaker(clock: ManualClock) -> Breaker:
    return Breaker("database", threshold=THRESHOLD, reset_timeout=TIMEOUT, clock=clock)


async def _outcome(breaker: Breaker, dep: Dependency, error: BaseException | None) -> str:
    """Call through the breaker: ``refused`` (the dependency was not called), ``ok`` or
    ``failed``."""
    dep.fail_with = error
    before = dep.calls
    try:
        await breaker.call(dep.read, 1)
    except BaseException:
        return "refused" if dep.calls == before else "failed"
    return "ok"


# -- the state machine against a model of the rules, over random histories -------------------
@dataclass
class Model:
    """The rules as the module docstring states them, with nothing shared with the code."""

    now: float = 0.0
    run: int = 0  # consecutive failures
    open_since: float | None = None
    history: list[str] = field(default_factory=list)
    trial: int = 0  # the half-open trial under way (its number), 0 when none
    trials: int = 0
    held: list[int] = field(default_factory=list)  # calls under way: the trial each holds

    def _settle(self, run: int, open_since: float | None) -> None:
        self.run, self.open_since, self.trial = run, open_since, 0

    def expected_state(self) -> CircuitState:
        if self.open_since is None:
            return CircuitState.CLOSED
        if self.now - self.open_since < TIMEOUT:
            return CircuitState.OPEN
        return CircuitState.HALF_OPEN

    def _refuses(self) -> bool:
        state = self.expected_state()
        return state is CircuitState.OPEN or (state is CircuitState.HALF_OPEN and self.trial > 0)

    def call(self, kind: str) -> str:
        state = self.expected_state()
        if self._refuses():
            return "refused"
        if kind == "ok":
            self._settle(0, None)
        elif kind == "fail":
            self.run += 1
            if state is CircuitState.HALF_OPEN or self.run >= THRESHOLD:
                self._settle(self.run, self.now)
        return "ok" if kind == "ok" else "failed"

    def hold(self) -> str:
        """A call that stays under way (it will end without deciding)."""
        if self._refuses():
            return "refused"
        if self.expected_state() is CircuitState.HALF_OPEN:
            self.trials += 1
            self.trial = self.trials
        self.held.append(self.trial)
        return "held"

    def drop(self) -> None:
        """The oldest call under way ends without deciding: it frees the trial it holds."""
        if self.held and (token := self.held.pop(0)) and token == self.trial:
            self.trial = 0


STEPS = st.lists(
    st.one_of(
        st.sampled_from(["ok", "fail", "neutral", "reset", "hold", "drop"]),
        # Whole and half seconds: exact in both the model's floats and the clock's timedelta.
        st.integers(min_value=0, max_value=40).map(lambda n: n / 2),
    ),
    max_size=60,
)


@settings(max_examples=300, deadline=None)
@given(steps=STEPS)
# A call let through while closed ends without deciding during another call's trial.
@example(steps=["hold", "fail", "fail", "fail", TIMEOUT, "hold", "drop", "hold", "ok"])
def test_breaker_follows_the_rules_over_any_history(steps: list[str | float]) -> None:
    async def run() -> None:
        clock = ManualClock()
        start = clock.now
        breaker, dep, model = _breaker(clock), Dependency(), Model()
        errors: dict[str, BaseException | None] = {
            "ok": None,
            "fail": DOWN,
            "neutral": InvalidCursorError("bad cursor"),
        }
        held: list[tuple[asyncio.Task[None], asyncio.Event]] = []

        async def until(event: asyncio.Event) -> None:
            await event.wait()
            raise InvalidCursorError("bad cursor")

        for step in steps:
            if isinstance(step, float):
                clock.advance(seconds=step)
                model.now += step
            elif step == "reset":
                breaker.reset()
                model._settle(0, None)
            elif step == "hold":
                event = asyncio.Event()
                task = asyncio.create_task(breaker.call(until, event))
                await asyncio.sleep(0)
                refused = task.done() and isinstance(task.exception(), CircuitOpenError)
                assert ("refused" if refused else "held") == model.hold(), (steps, step)
                if not refused:
                    held.append((task, event))
            elif step == "drop":
                model.drop()
                if held:
                    task, event = held.pop(0)
                    event.set()
                    with pytest.raises(InvalidCursorError):
                        await task
            else:
                got = await _outcome(breaker, dep, errors[step])
                assert got == model.call(step), (steps, step)
            assert breaker.state is model.expected_state()
            snap = breaker.snapshot()
            assert snap.failures == model.run
            if model.open_since is None:
                assert snap.opened_at is None and snap.retry_at is None
            else:
                assert snap.opened_at == start + timedelta(seconds=model.open_since)
                assert snap.retry_at == snap.opened_at + timedelta(seconds=TIMEOUT)
        for task, _ in held:
            task.cancel()
        await asyncio.gather(*(task for task, _ in held), return_exceptions=True)

    asyncio.run(run())


# -- the transitions, one by one ----------------------------------------------------------------
async def test_threshold_opens_then_calls_fail_at_once_until_the_timeout() -> None:
    clock = ManualClock()
    breaker, dep = _breaker(clock), Dependency()
    for _ in range(THRESHOLD):
        assert await _outcome(breaker, dep, DOWN) == "failed"
    assert breaker.state is CircuitState.OPEN
    assert dep.calls == THRESHOLD
    with pytest.raises(CircuitOpenError) as refused:
        await breaker.call(dep.read, 1)
    assert str(refused.value) == "database: circuit open, retry in 10 s"
    assert refused.value.component == "database"
    assert refused.value.retry_after == TIMEOUT
    assert dep.calls == THRESHOLD  # the dead dependency was not asked
    clock.advance(seconds=TIMEOUT - 2.5)
    assert breaker.retry_in() == 2.5
    assert "retry in 3 s" in str(breaker.refusal())
    assert breaker.snapshot().rejected == 1


async def test_half_open_lets_one_trial_through_and_its_success_closes() -> None:
    clock = ManualClock()
    breaker, dep = _breaker(clock), Dependency()
    for _ in range(THRESHOLD):
        await _outcome(breaker, dep, DOWN)
    clock.advance(seconds=TIMEOUT)
    assert breaker.state is CircuitState.HALF_OPEN
    gate = asyncio.Event()

    async def slow_trial() -> int:
        await gate.wait()
        return 1

    trial = asyncio.create_task(breaker.call(slow_trial))
    await asyncio.sleep(0)  # the trial has taken the slot
    dep.fail_with = None
    with pytest.raises(CircuitOpenError, match="trial call is under way"):
        await breaker.call(dep.read, 1)
    gate.set()
    assert await trial == 1
    assert breaker.state is CircuitState.CLOSED
    assert await breaker.call(dep.read, 2) == 4


async def test_a_failed_trial_opens_for_another_timeout() -> None:
    clock = ManualClock()
    breaker, dep = _breaker(clock), Dependency()
    for _ in range(THRESHOLD):
        await _outcome(breaker, dep, DOWN)
    clock.advance(seconds=TIMEOUT)
    assert await _outcome(breaker, dep, DOWN) == "failed"
    assert breaker.state is CircuitState.OPEN
    clock.advance(seconds=TIMEOUT - 1)
    assert await _outcome(breaker, dep, None) == "refused"


async def test_a_cancelled_trial_frees_the_slot_without_deciding() -> None:
    clock = ManualClock()
    breaker, dep = _breaker(clock), Dependency()
    for _ in range(THRESHOLD):
        await _outcome(breaker, dep, DOWN)
    clock.advance(seconds=TIMEOUT)
    trial = asyncio.create_task(breaker.call(asyncio.Event().wait))
    await asyncio.sleep(0)
    trial.cancel()
    with pytest.raises(asyncio.CancelledError):
        await trial
    assert breaker.state is CircuitState.HALF_OPEN
    assert await _outcome(breaker, dep, None) == "ok"
    assert breaker.state is CircuitState.CLOSED


async def test_only_dependency_failures_count() -> None:
    clock = ManualClock()
    breaker, dep = _breaker(clock), Dependency()
    full = InsufficientStorageError("sqlite", "disk full")
    for error in (full, InvalidCursorError("x"), ValueError("bug"), CircuitOpenError("x", "", 1)):
        for _ in range(THRESHOLD):
            assert await _outcome(breaker, dep, error) == "failed"
        assert breaker.state is CircuitState.CLOSED, error
        assert breaker.snapshot().failures == 0
    assert store_failure(DOWN) and not store_failure(full)
    assert embedder_failure(EmbeddingError("inference failed")) and embedder_failure(DOWN)
    assert not store_failure(EmbeddingError("inference failed"))


async def test_a_success_between_failures_starts_the_count_again() -> None:
    breaker, dep = _breaker(ManualClock()), Dependency()
    for _ in range(5):
        for _ in range(THRESHOLD - 1):
            await _outcome(breaker, dep, DOWN)
        await _outcome(breaker, dep, None)
    assert breaker.state is CircuitState.CLOSED


def test_allow_and_record_drive_a_breaker_without_a_port() -> None:
    """The interface a caller such as the Redis rate limiter uses."""
    clock = ManualClock()
    redis = Circuits(threshold=2, reset_timeout=5, clock=clock).get("redis")
    assert redis.allow()
    redis.record_failure()
    assert redis.allow()
    redis.record_failure()
    assert not redis.allow()
    clock.advance(seconds=5)
    assert redis.allow()  # the trial
    assert not redis.allow()  # while it runs
    redis.record_success()
    assert redis.state is CircuitState.CLOSED and redis.allow()


def test_reset_closes_an_open_circuit() -> None:
    breaker = _breaker(ManualClock())
    for _ in range(THRESHOLD):
        breaker.record_failure()
    assert breaker.state is CircuitState.OPEN
    breaker.reset()
    snap = breaker.snapshot()
    assert (snap.state, snap.failures, snap.opened_at) == (CircuitState.CLOSED, 0, None)


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError):
        Breaker("x", threshold=0, reset_timeout=1)
    with pytest.raises(ValueError):
        Breaker("x", threshold=1, reset_timeout=-1)


# -- the registry --------------------------------------------------------------------------
def test_registry_has_one_breaker_per_dependency_from_the_settings() -> None:
    cfg = Settings(  # type: ignore[call-arg]
        _env_file=None, circuit_failure_threshold=7, circuit_reset_timeout=2.5, redis_retry_s=9
    )
    circuits = Circuits.from_settings(cfg, ManualClock())
    assert [b.name for b in circuits] == list(CIRCUIT_NAMES)
    assert {(b.threshold, b.reset_timeout) for b in circuits if b.name != "redis"} == {(7, 2.5)}
    # Redis: open at the first failure (it has waited its timeout), retry every WW_REDIS_RETRY_S.
    assert (circuits.get("redis").threshold, circuits.get("redis").reset_timeout) == (1, 9.0)
    with pytest.raises(KeyError):
        circuits.get("nope")


# -- the guard over a port object -------------------------------------------------------------
async def test_guard_runs_coroutine_methods_through_the_breaker_and_nothing_else() -> None:
    clock = ManualClock()
    circuits = Circuits(threshold=1, reset_timeout=TIMEOUT, clock=clock)
    dep = Dependency()
    port = circuits.guard("database", dep)
    assert await port.read(3) == 6
    assert (port.dimension, port.describe()) == (7, "plain")
    dep.fail_with = DOWN
    with pytest.raises(StoreUnavailableError, match="neo4j"):
        await port.read(1)
    with pytest.raises(CircuitOpenError, match="database: circuit open"):
        await port.read(1)
    assert dep.calls == 2
    await port.close()  # lifecycle passes, open circuit or not
    assert dep.closed
    port.dimension = 9  # writes reach the object
    assert dep.dimension == 9
    assert unwrap(port) is dep and unwrap(dep) is dep
    assert gate_of(port) is circuits.get("database") and gate_of(dep) is None
    side = alike(port, Dependency())
    assert gate_of(side) is circuits.get("database")
    assert alike(dep, side) is side
    # Guarding a guarded object replaces the gate rather than stacking two.
    again = guarded(port, circuits.get("vectors"))
    assert unwrap(again) is dep and gate_of(again) is circuits.get("vectors")


async def test_guard_calls_the_method_the_object_has_now() -> None:
    """A method patched on the object or its class after the first call is the one that
    runs (the guard keeps its wrapper, not the method)."""
    circuits = Circuits(threshold=1, reset_timeout=TIMEOUT, clock=ManualClock())
    dep = Dependency()
    port = circuits.guard("database", dep)
    assert await port.read(1) == 2

    async def tripled(x: int) -> int:
        return x * 3

    port.read = tripled
    assert await port.read(2) == 6
    del port.read
    assert await port.read(2) == 4
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(Dependency, "read", lambda self, x: tripled(x + 1))
        assert await port.read(2) == 9
    assert await port.read(2) == 4


async def test_a_call_let_through_while_closed_cannot_free_a_later_trial() -> None:
    """A call admitted while closed that ends without deciding, after the circuit has gone
    half-open, leaves the trial to the call that holds it: a second trial is refused."""
    clock = ManualClock()
    breaker, dep = _breaker(clock), Dependency()
    slow_end, trial_end = asyncio.Event(), asyncio.Event()

    async def slow_then_neutral() -> None:
        await slow_end.wait()
        raise InvalidCursorError("bad cursor")

    early = asyncio.create_task(breaker.call(slow_then_neutral))
    await asyncio.sleep(0)
    for _ in range(THRESHOLD):
        await _outcome(breaker, dep, DOWN)
    clock.advance(seconds=TIMEOUT)
    trial = asyncio.create_task(breaker.call(trial_end.wait))
    await asyncio.sleep(0)
    slow_end.set()
    with pytest.raises(InvalidCursorError):
        await early
    assert breaker.state is CircuitState.HALF_OPEN
    assert await _outcome(breaker, dep, None) == "refused"  # the trial is still under way
    trial_end.set()
    await trial
    assert breaker.state is CircuitState.CLOSED


def test_only_the_trial_holder_frees_the_trial() -> None:
    """``admit`` says whether this caller holds the trial; a stale token frees nothing."""
    clock = ManualClock()
    breaker = _breaker(clock)
    ordinary = breaker.admit()
    assert ordinary is not None and not ordinary  # let through, no trial held
    for _ in range(THRESHOLD):
        breaker.record_failure()
    assert breaker.admit() is None
    clock.advance(seconds=TIMEOUT)
    first = breaker.admit()
    assert first  # the trial
    breaker.release(ordinary)
    assert breaker.admit() is None  # the trial still runs
    breaker.record_failure()  # it failed: open again
    clock.advance(seconds=TIMEOUT)
    second = breaker.admit()
    assert second and second != first
    breaker.release(first)  # a stale trial's token
    assert breaker.admit() is None
    breaker.release(second)
    assert breaker.admit()


async def test_an_embedders_windows_pass_its_circuit() -> None:
    """Splitting a text into windows only tokenises: it works while the model's circuit is
    open and cannot take a half-open circuit's trial (closing it untried)."""
    from ww.embedding import VENDORED_MODEL, EmbeddingService, OnnxEmbedder, vendored_model_dir

    clock = ManualClock()
    circuits = Circuits(threshold=1, reset_timeout=TIMEOUT, clock=clock)
    model = OnnxEmbedder(vendored_model_dir(), model_id=VENDORED_MODEL)
    service = EmbeddingService(model, cache_size=4, batch_size=4)
    port = circuits.guard("embedder", service)
    await service.aclose()  # the model is gone: every embedding fails
    with pytest.raises(EmbeddingError):
        await port.embed_many(["x"])
    breaker = circuits.get("embedder")
    assert breaker.state is CircuitState.OPEN
    text = "river " * 600
    assert len((await port.windows_many([text]))[0]) > 2  # no model needed
    clock.advance(seconds=TIMEOUT)
    assert breaker.state is CircuitState.HALF_OPEN
    await port.windows_many([text])
    assert breaker.state is CircuitState.HALF_OPEN  # the trial is still the model's
    with pytest.raises(EmbeddingError):
        await port.embed_many(["x"])
    assert breaker.state is CircuitState.OPEN
