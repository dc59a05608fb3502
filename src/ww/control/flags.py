"""Feature flags from ``WW_FLAG_<NAME>`` (defaults from the deployment guide).

Minimal version made for consolidation's ``capsule_encoding``; runtime changes and shared
state across workers belong to the control plane and are not here yet.
"""

from __future__ import annotations

from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["Flags"]


class Flags(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="WW_FLAG_", extra="ignore")

    ff_encoder: bool = True
    capsule_encoding: bool = True
    lability_window: bool = True
    three_factor_learning: bool = True
    api_rate_limiting: bool = True
    read_only_mode: bool = False
    maintenance_mode: bool = False
