"""Control plane: feature flags (flags.py) and their runtime state with the emergency level
shared through the record store (runtime.py), and one circuit breaker per dependency
(circuits.py)."""

from __future__ import annotations

from ww.control.flags import Flags, load_flags

__all__ = ["Flags", "load_flags"]
