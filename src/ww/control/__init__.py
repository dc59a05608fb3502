"""Control plane: feature flags (more to come: emergency levels, circuit breakers)."""

from ww.control.flags import Flags

__all__ = ["Flags"]
