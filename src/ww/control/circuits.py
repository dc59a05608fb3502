"""Circuit breakers: one per dependency, so a dead one answers 503 at once.

``database`` guards the record store and every store on its database (entities, skills,
learning state, consolidation links, idempotency keys), ``vectors`` the vector indexes,
``embedder`` the embedding model, ``redis`` the rate limiter's Redis (fed by the limiter:
``admit()`` before a call, then ``record_success()``, ``record_failure()`` or
``release(token)``).

States: *closed* lets every call through and counts consecutive failures; at
``WW_CIRCUIT_FAILURE_THRESHOLD`` it *opens*: every call is refused at once with
``CircuitOpenError`` (a ``StoreUnavailableError``, so 503) for ``WW_CIRCUIT_RESET_TIMEOUT``
seconds. Then it is *half-open*: one trial call goes through (others are refused while it
runs); success closes the circuit, failure opens it for another timeout. ``reset()`` closes
it by hand.

Only a dependency's failure counts (``StoreUnavailableError``, and ``EmbeddingError`` for
the embedder); a full disk (507) does not, since reads still work then. An error of the
caller's (a conflict, a bad cursor) or a cancelled call says nothing about the dependency:
it neither counts nor closes, and frees the trial slot if that call held it: the trial is
owned (``admit()`` hands out a token), so a call let through while closed that ends after
the circuit went half-open cannot free another call's trial and let a second one through.

Written here rather than taken from ``purgatory`` or ``aiobreaker``: neither takes a clock
(their timeouts read ``time.time``/``datetime.utcnow``), neither keeps half-open to one
trial call, and ``purgatory`` has no manual reset and counts a cancelled call as a failure.

State is per process: each worker of ``WW_API_WORKERS`` has its own breakers.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from ww.config import Settings
from ww.embedding.base import EmbeddingError
from ww.models.control import CircuitState
from ww.storage.diskspace import InsufficientStorageError
from ww.storage.guarded import guarded
from ww.storage.ports import StoreUnavailableError

__all__ = [
    "CIRCUIT_NAMES",
    "Breaker",
    "CircuitOpenError",
    "CircuitSnapshot",
    "CircuitState",
    "Circuits",
    "embedder_failure",
    "store_failure",
]

log = logging.getLogger(__name__)

T = TypeVar("T")
Clock = Callable[[], datetime]

CIRCUIT_NAMES = ("database", "vectors", "embedder", "redis")


def _utc_now() -> datetime:
    return datetime.now(UTC)


class CircuitOpenError(StoreUnavailableError):
    """A call refused by an open (or busy half-open) circuit, without reaching the
    dependency; ``retry_after`` is the number of seconds until a trial call may pass."""

    def __init__(self, circuit: str, message: str, retry_after: float) -> None:
        super().__init__(circuit, message)
        self.retry_after = retry_after


def store_failure(exc: BaseException) -> bool:
    """Whether ``exc`` says a store is unavailable (not full, not refused by a circuit)."""
    return isinstance(exc, StoreUnavailableError) and not isinstance(
        exc, InsufficientStorageError | CircuitOpenError
    )


def embedder_failure(exc: BaseException) -> bool:
    return store_failure(exc) or isinstance(exc, EmbeddingError)


@dataclass(frozen=True, slots=True)
class CircuitSnapshot:
    name: str
    state: CircuitState
    failures: int
    threshold: int
    reset_timeout: float
    opened_at: datetime | None
    retry_at: datetime | None
    rejected: int


class Breaker:
    """One dependency's circuit. Not thread-safe: used from the event loop only."""

    def __init__(
        self,
        name: str,
        *,
        threshold: int,
        reset_timeout: float,
        clock: Clock = _utc_now,
        counts: Callable[[BaseException], bool] = store_failure,
    ) -> None:
        if threshold < 1 or reset_timeout < 0:
            raise ValueError("threshold must be >= 1 and reset_timeout >= 0")
        self.name, self.threshold, self.reset_timeout = name, threshold, reset_timeout
        self._clock, self._counts = clock, counts
        self._state = CircuitState.CLOSED
        self._failures = 0
        self._opened_at: datetime | None = None
        self._trial = 0  # the token of the half-open trial under way, 0 when none
        self._trials = 0  # tokens handed out so far: a stale one never matches
        self._rejected = 0

    # -- state -------------------------------------------------------------------------------
    @property
    def state(self) -> CircuitState:
        self._advance()
        return self._state

    def _retry_at(self) -> datetime | None:
        if self._opened_at is None:
            return None
        return self._opened_at + timedelta(seconds=self.reset_timeout)

    def _advance(self) -> None:
        """Open becomes half-open once the timeout has passed."""
        retry_at = self._retry_at()
        if self._state is CircuitState.OPEN and retry_at is not None and self._clock() >= retry_at:
            self._state = CircuitState.HALF_OPEN
            self._trial = 0

    def retry_in(self) -> float:
        """Seconds until a trial call may pass (0 unless open)."""
        retry_at = self._retry_at()
        if self.state is not CircuitState.OPEN or retry_at is None:
            return 0.0
        return max(0.0, (retry_at - self._clock()).total_seconds())

    def snapshot(self) -> CircuitSnapshot:
        state = self.state
        return CircuitSnapshot(
            name=self.name,
            state=state,
            failures=self._failures,
            threshold=self.threshold,
            reset_timeout=self.reset_timeout,
            opened_at=self._opened_at,
            retry_at=self._retry_at(),
            rejected=self._rejected,
        )

    # -- transitions (also the interface of a caller that is not a port object) ---------------
    def admit(self) -> int | None:
        """None: refused. Else the call may go to the dependency now, and the token says
        whether this caller holds the half-open trial (non-zero) or not (0); the call ends
        with ``record_success``, ``record_failure`` or ``release(token)``."""
        state = self.state
        if state is CircuitState.CLOSED:
            return 0
        if state is CircuitState.HALF_OPEN and not self._trial:
            self._trials += 1
            self._trial = self._trials
            return self._trial
        self._rejected += 1
        return None

    def allow(self) -> bool:
        """Whether a call may go to the dependency now (``admit`` for a caller that may end
        without deciding and must free the trial it holds)."""
        return self.admit() is not None

    def record_success(self) -> None:
        if self._state is not CircuitState.CLOSED:
            log.info("circuit %s closed: the dependency answered", self.name)
        self._close()

    def record_failure(self) -> None:
        self._failures += 1
        self._advance()
        if self._state is CircuitState.HALF_OPEN or (
            self._state is CircuitState.CLOSED and self._failures >= self.threshold
        ):
            self._state = CircuitState.OPEN
            self._opened_at = self._clock()
            self._trial = 0
            log.warning(
                "circuit %s opened after %d consecutive failures: its calls get 503 at once "
                "for %g s, then one trial call goes through",
                self.name,
                self._failures,
                self.reset_timeout,
            )

    def release(self, token: int) -> None:
        """A call let through (with ``token`` from ``admit``) ended without showing whether
        the dependency works: frees the trial if that call holds it, else nothing."""
        if token and token == self._trial:
            self._trial = 0

    def reset(self) -> None:
        """Close by hand (an operator who knows the dependency is back)."""
        log.info("circuit %s reset by an operator (was %s)", self.name, self.state.value)
        self._close()

    def _close(self) -> None:
        self._state = CircuitState.CLOSED
        self._failures = 0
        self._opened_at = None
        self._trial = 0

    def refusal(self) -> CircuitOpenError:
        wait = self.retry_in()
        if self.state is CircuitState.OPEN:
            message = f"circuit open, retry in {math.ceil(wait)} s"
        else:
            message = "circuit half-open, a trial call is under way; retry in 1 s"
        return CircuitOpenError(self.name, message, max(1.0, wait))

    async def call(self, fn: Callable[..., Awaitable[T]], /, *args: Any, **kwargs: Any) -> T:
        """``fn(*args, **kwargs)`` if the circuit lets it through; else ``CircuitOpenError``."""
        token = self.admit()
        if token is None:
            raise self.refusal()
        try:
            result = await fn(*args, **kwargs)
        except BaseException as exc:
            if self._counts(exc):
                self.record_failure()
            else:
                self.release(token)
            raise
        self.record_success()
        return result


class Circuits:
    """The breakers of one process, by name (``CIRCUIT_NAMES``)."""

    def __init__(
        self,
        *,
        threshold: int = 5,
        reset_timeout: float = 30.0,
        clock: Clock = _utc_now,
        redis: tuple[int, float] | None = None,
    ) -> None:
        # ``redis``: its own (threshold, reset timeout). Each Redis call already waits out
        # its socket timeout, so the rate limiter's circuit opens at the first failure and
        # tries again after ``WW_REDIS_RETRY_S``.
        self._breakers = {
            name: Breaker(
                name,
                threshold=redis[0] if redis and name == "redis" else threshold,
                reset_timeout=redis[1] if redis and name == "redis" else reset_timeout,
                clock=clock,
                counts=embedder_failure if name == "embedder" else store_failure,
            )
            for name in CIRCUIT_NAMES
        }

    @classmethod
    def from_settings(cls, settings: Settings, clock: Clock = _utc_now) -> Circuits:
        return cls(
            threshold=settings.circuit_failure_threshold,
            reset_timeout=settings.circuit_reset_timeout,
            clock=clock,
            redis=(1, settings.redis_retry_s),
        )

    def __iter__(self) -> Iterator[Breaker]:
        return iter(self._breakers.values())

    def get(self, name: str) -> Breaker:
        """Raises ``KeyError`` for a name that is not a circuit."""
        return self._breakers[name]

    def guard(self, name: str, target: T) -> T:
        """``target`` (a port object) with every coroutine method behind circuit ``name``."""
        return guarded(target, self.get(name))
