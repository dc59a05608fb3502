"""The control plane's emergency levels, beside the other domain types so that a client can
read a health report without importing the stores."""

from __future__ import annotations

from enum import StrEnum

__all__ = ["Level"]


class Level(StrEnum):
    """Emergency levels, in order: LIMITED is read-only, LOCKDOWN answers only health and
    control."""

    NONE = "NONE"
    LIMITED = "LIMITED"
    LOCKDOWN = "LOCKDOWN"
