"""Feature flags from WW_FLAG_<NAME>, with the deployment guide's defaults."""

from __future__ import annotations

from pathlib import Path

import pytest

from ww.config import ConfigError, load_settings
from ww.control.flags import MECHANISMS, Flags, load_flags

GUIDE_DEFAULTS = {
    "ff_encoder": True,
    "capsule_encoding": True,
    "lability_window": True,
    "three_factor_learning": True,
    "api_rate_limiting": True,
    "read_only_mode": False,
    "maintenance_mode": False,
}


def test_guide_defaults_and_ablation_defaults(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)  # no stray .env
    flags = load_flags()
    assert {k: getattr(flags, k) for k in GUIDE_DEFAULTS} == GUIDE_DEFAULTS
    # from the LoCoMo ablation (docs/benchmarks.md)
    assert flags.spreading_activation
    assert not (flags.fsrs or flags.actr or flags.hebbian or flags.reconsolidation)


def test_reads_every_flag_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    names = list(Flags.model_fields)
    for name in names:
        default = Flags.model_fields[name].default
        monkeypatch.setenv(f"WW_FLAG_{name.upper()}", "false" if default else "true")
    flags = load_flags()
    assert all(getattr(flags, n) is not Flags.model_fields[n].default for n in names)


def test_invalid_flag_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WW_FLAG_FF_ENCODER", "maybe")
    with pytest.raises(ConfigError, match="WW_FLAG_FF_ENCODER='maybe'"):
        load_flags()


def test_without_switches_one_mechanism_off() -> None:
    on = Flags(**dict.fromkeys(MECHANISMS, True))
    for m in MECHANISMS:
        off = on.without(m)
        assert not getattr(off, m)
        assert all(getattr(off, o) for o in MECHANISMS if o != m)
    with pytest.raises(KeyError):
        on.without("nope")


def test_learning_settings_defaults(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    s = load_settings()
    assert s.lability_window_hours == 6.0
    monkeypatch.setenv("WW_LABILITY_WINDOW_HOURS", "2.5")
    assert load_settings().lability_window_hours == 2.5
    monkeypatch.setenv("WW_LABILITY_WINDOW_HOURS", "0")
    with pytest.raises(ConfigError, match="WW_LABILITY_WINDOW_HOURS"):
        load_settings()
