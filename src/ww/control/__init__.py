"""Control plane: feature flags (emergency levels and circuit breakers come later)."""

from __future__ import annotations

from ww.control.flags import Flags, load_flags

__all__ = ["Flags", "load_flags"]
