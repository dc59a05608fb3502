"""Feature flags, start values read from ``WW_FLAG_<NAME>=true|false``.

The first seven are the deployment guide's flags with its defaults, then its example flag
``telemetry``. The others switch the individual recall dynamics so the LoCoMo ablation
(bench/locomo.py --ablation) can turn each one off in turn; their defaults follow that
ablation (docs/benchmarks.md): a mechanism that lowers recall@10 defaults to off.

A ``Flags`` is an immutable snapshot. The engine holds the current one in ``engine.flags``
and every reader reads that attribute at each use, so the control plane
(``ww.control.runtime``) changes a flag by putting a new snapshot there. A flag listed in
``NOT_BUILT`` does nothing yet: ``load_flags`` warns when it is set away from its default.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError
from pydantic_settings import BaseSettings

from ww.config import ConfigError, env_config

__all__ = ["MECHANISMS", "NOT_BUILT", "Flags", "flag_sources", "load_flags"]

logger = logging.getLogger(__name__)

# The guide's flags nothing reads yet, and what stays as it is whatever their value.
# None at present (``telemetry`` gates the OpenTelemetry export, ``ww.tracing``).
NOT_BUILT: Mapping[str, str] = {}


class Flags(BaseSettings):
    """Field ``foo`` is read from ``WW_FLAG_FOO``."""

    model_config = env_config("WW_FLAG_", frozen=True)

    # -- the deployment guide's flags ---------------------------------------------------
    ff_encoder: bool = True
    capsule_encoding: bool = True
    lability_window: bool = True
    three_factor_learning: bool = True
    api_rate_limiting: bool = True
    read_only_mode: bool = False
    maintenance_mode: bool = False
    # The guide's example flag: OpenTelemetry spans are exported while it is on and
    # WW_OTEL_ENABLED is set (ww.tracing); off, an opt-in.
    telemetry: bool = False

    # -- recall dynamics (defaults from the LoCoMo ablation, docs/benchmarks.md) ----------
    # Off: each lowered LoCoMo recall@10 in the ablation (it favours memories that were
    # retrieved or rewarded before, whatever the new question asks). ``fsrs`` decides only
    # whether retrievability ranks: FSRS state is updated on every review regardless.
    fsrs: bool = False
    actr: bool = False
    hebbian: bool = False
    reconsolidation: bool = False
    # On: the temporal-neighbour and Hebbian spread terms raise recall@10.
    spreading_activation: bool = True
    # On: a rating counts again, at full strength, when the same or a nearly same question
    # comes back (LoCoMo and LongMemEval second asks; docs/benchmarks.md).
    query_feedback: bool = True

    def without(self, name: str) -> Flags:
        """A copy with one flag off (the ablation's unit of change)."""
        if name not in type(self).model_fields:
            raise KeyError(name)
        return self.model_copy(update={name: False})


# What the ablation switches off in turn, in the order it reports them.
MECHANISMS: tuple[str, ...] = (
    "fsrs",
    "actr",
    "hebbian",
    "spreading_activation",
    "three_factor_learning",
    "lability_window",
    "reconsolidation",
    "ff_encoder",
    "query_feedback",
)


def load_flags(**overrides: Any) -> Flags:
    try:
        flags = Flags(**overrides)
    except ValidationError as exc:
        lines = [
            f"WW_FLAG_{'.'.join(str(p) for p in e['loc']).upper()}={e.get('input')!r}: {e['msg']}"
            for e in exc.errors()
        ]
        raise ConfigError("invalid feature flags:\n  " + "\n  ".join(lines)) from None
    for name, unchanged in NOT_BUILT.items():
        value = getattr(flags, name)
        if value != Flags.model_fields[name].default:
            logger.warning(
                "WW_FLAG_%s=%s does nothing yet: %s", name.upper(), str(value).lower(), unchanged
            )
    return flags


def flag_sources(start: Flags) -> dict[str, str]:
    """Per flag, where its start value came from: ``env`` (``WW_FLAG_<NAME>``, or given to
    ``build_engine``) or ``default``."""
    return {
        name: "env" if name in start.model_fields_set else "default" for name in Flags.model_fields
    }
