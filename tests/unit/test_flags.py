"""Feature flags from WW_FLAG_<NAME>, with the deployment guide's defaults."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from ww.config import ConfigError, Settings, load_settings
from ww.control.flags import MECHANISMS, Flags, load_flags
from ww.embedding import EmbeddingService, OnnxEmbedder
from ww.engine import build_consolidator, build_engine, build_semantic

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


@pytest.mark.parametrize(
    ("name", "value"),
    # Every flag is built now: a stand-in keeps the mechanism tested for the next one.
    [("capsule_encoding", "false")],
)
def test_flags_not_built_yet_warn_when_set(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    name: str,
    value: str,
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("ww.control.flags.NOT_BUILT", {name: "nothing changes"})
    with caplog.at_level(logging.WARNING, logger="ww.control.flags"):
        load_flags()
    assert caplog.records == []  # at their defaults: nothing to say
    monkeypatch.setenv(f"WW_FLAG_{name.upper()}", value)
    with caplog.at_level(logging.WARNING, logger="ww.control.flags"):
        load_flags()
    (record,) = caplog.records
    assert record.getMessage().startswith(f"WW_FLAG_{name.upper()}={value} does nothing yet: ")


def test_flags_given_to_build_engine_are_the_engines(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, onnx_embedder: OnnxEmbedder
) -> None:
    # The engine and everything it wires read the one object passed in, not the environment.
    monkeypatch.setenv("WW_FLAG_FSRS", "false")
    monkeypatch.setenv("WW_FLAG_CAPSULE_ENCODING", "true")
    cfg = Settings(_env_file=None, data_dir=tmp_path, environment="test")  # type: ignore[arg-type]
    given = Flags(fsrs=True, capsule_encoding=False)
    embedder = EmbeddingService(onnx_embedder, cache_size=0, batch_size=8)
    engine = build_engine(cfg, embedder=embedder, flags=given)
    consolidator = build_consolidator(engine, build_semantic(cfg, engine))
    assert engine.flags is given
    assert engine.recall_learning.flags is given
    assert consolidator.flags() is given
