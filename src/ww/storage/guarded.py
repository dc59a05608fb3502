"""A port object whose every coroutine method runs through a gate (a circuit breaker).

One proxy for every port (record store, vector index, side stores, embedder) instead of a
guarded twin per method: the gate decides whether a call may reach the dependency and learns
from how it ended. Attributes that are not coroutine methods (``dimension``, ``model_id``)
and the methods in ``PASS_THROUGH`` (lifecycle, tokenising) reach the object unchanged.

The gate lives in ``ww.control.circuits``; this module only knows its ``call``, so the
storage factory can hand a side store the gate of its record store without importing the
control plane.
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Awaitable, Callable
from typing import Any, Protocol, TypeVar, cast

__all__ = [
    "OBSERVERS",
    "PASS_THROUGH",
    "CallObserver",
    "Gate",
    "alike",
    "gate_of",
    "guarded",
    "unwrap",
]

T = TypeVar("T")

# A store must close with its circuit open, and a store that will not open at start-up is
# reported as such rather than as an open circuit. The embedder's ``windows_many`` only
# tokenises (async to run off the loop): it must neither take a half-open circuit's trial
# call, closing it without the model being tried, nor fail while the model's circuit is open.
PASS_THROUGH = frozenset({"open", "close", "aclose", "windows_many"})

# Told of every guarded call once it ends: (the gate's name, the method's name, seconds,
# the exception or None). The one place the metrics see each store, index and embedder
# call (``ww.api.metrics`` registers itself); empty, a call costs nothing more.
CallObserver = Callable[[str, str, float, BaseException | None], None]
OBSERVERS: list[CallObserver] = []


class Gate(Protocol):
    async def call(self, fn: Callable[..., Awaitable[Any]], /, *args: Any, **kwargs: Any) -> Any:
        """Run ``fn(*args, **kwargs)`` or refuse at once."""


class _Guarded:
    __slots__ = ("_ww_gate", "_ww_methods", "_ww_target")

    _ww_gate: Gate
    _ww_methods: dict[str, Callable[..., Awaitable[Any]]]
    _ww_target: object

    def __init__(self, target: object, gate: Gate) -> None:
        object.__setattr__(self, "_ww_target", target)
        object.__setattr__(self, "_ww_gate", gate)
        object.__setattr__(self, "_ww_methods", {})

    def __getattr__(self, name: str) -> Any:
        method = self._ww_methods.get(name)
        if method is not None:
            return method
        attr = getattr(self._ww_target, name)
        if name in PASS_THROUGH or not inspect.iscoroutinefunction(attr):
            return attr
        target, gate = self._ww_target, self._ww_gate

        # The method is looked up on every call, so one patched on the object or its class
        # (as tests do) is the one that runs; only the wrapper is kept.
        async def through_gate(*args: Any, **kwargs: Any) -> Any:
            if not OBSERVERS:
                return await gate.call(getattr(target, name), *args, **kwargs)
            start = time.perf_counter()
            try:
                result = await gate.call(getattr(target, name), *args, **kwargs)
            except BaseException as exc:
                _tell(gate, name, time.perf_counter() - start, exc)
                raise
            _tell(gate, name, time.perf_counter() - start, None)
            return result

        through_gate.__name__ = through_gate.__qualname__ = name
        self._ww_methods[name] = through_gate
        return through_gate

    # Writes go to the object, so patching an attribute of a store (as tests do) patches
    # the store and the next read is guarded as before.
    def __setattr__(self, name: str, value: Any) -> None:
        self._ww_methods.pop(name, None)
        setattr(self._ww_target, name, value)

    def __delattr__(self, name: str) -> None:
        self._ww_methods.pop(name, None)
        delattr(self._ww_target, name)

    def __repr__(self) -> str:
        return f"guarded({self._ww_target!r})"


def _tell(gate: Gate, name: str, seconds: float, error: BaseException | None) -> None:
    circuit = str(getattr(gate, "name", "unnamed"))
    for observer in OBSERVERS:
        observer(circuit, name, seconds, error)


def guarded(target: T, gate: Gate) -> T:
    """``target`` with its coroutine methods run through ``gate`` (typed as ``target``)."""
    return cast(T, _Guarded(unwrap(target), gate))


def unwrap(obj: T) -> T:
    """The object behind a guard (``obj`` itself when it has none)."""
    return cast(T, obj._ww_target) if isinstance(obj, _Guarded) else obj


def gate_of(obj: object) -> Gate | None:
    return obj._ww_gate if isinstance(obj, _Guarded) else None


def alike(model: object, target: T) -> T:
    """``target`` behind the gate of ``model``, if it has one: a store on the same
    database as ``model`` fails when it fails, so it shares its circuit."""
    gate = gate_of(model)
    return target if gate is None else guarded(target, gate)
