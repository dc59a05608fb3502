"""Settings and flags given to the engine act where they claim to (real stores and model).

Each test varies one value and observes its effect, so it fails when the value stops acting.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import settings as hyp_settings
from hypothesis import strategies as st

from tests.conftest import ManualClock
from tests.engine.topics import TOPICS
from ww.config import Settings
from ww.control.flags import Flags
from ww.embedding import EmbeddingService, OnnxEmbedder
from ww.engine import build_consolidator, build_engine, build_semantic
from ww.engine.dynamics import Fsrs
from ww.models import EpisodeCreate
from ww.models.consolidation import ConsolidationOptions, ConsolidationReport

T0 = datetime(2025, 1, 1, tzinfo=UTC)


async def _consolidate(
    settings: Settings,
    embedder: OnnxEmbedder,
    clock: ManualClock,
    texts: list[str],
    opts: ConsolidationOptions,
    *,
    flags: Flags | None = None,
    importance: float = 0.5,
    days_later: float = 0.0,
) -> ConsolidationReport:
    service = EmbeddingService(embedder, cache_size=64, batch_size=16)
    engine = build_engine(settings, clock=clock, embedder=service, flags=flags)
    semantic = build_semantic(settings, engine)
    consolidator = build_consolidator(engine, semantic)
    await engine.open()
    await semantic.open()
    try:
        creates = [EpisodeCreate(content=t, importance=importance) for t in texts]
        await engine.create_episodes("s1", creates)
        clock.advance(days=days_later)
        return await consolidator.consolidate("s1", opts)
    finally:
        await semantic.close()
        await engine.close()


@pytest.mark.parametrize("given_flag", [True, False])
async def test_flags_given_to_build_engine_reach_the_consolidator(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    onnx_embedder: OnnxEmbedder,
    clock: ManualClock,
    given_flag: bool,
) -> None:
    monkeypatch.chdir(tmp_path)  # no stray .env
    # The environment says the opposite of the flags passed in: the passed ones must win.
    monkeypatch.setenv("WW_FLAG_CAPSULE_ENCODING", str(not given_flag).lower())
    cfg = Settings(_env_file=None, data_dir=tmp_path / "data", environment="test")  # type: ignore[arg-type]
    texts = [t for topic in TOPICS.values() for t in topic]
    opts = ConsolidationOptions(min_cluster_size=3, dry_run=True)
    report = await _consolidate(
        cfg, onnx_embedder, clock, texts, opts, flags=Flags(capsule_encoding=given_flag)
    )
    assert report.capsule_encoding is given_flag
    assert report.entities  # the flag chose how these entities' vectors were built


@pytest.mark.parametrize(("target", "archived"), [(0.7, True), (0.97, False)])
async def test_retention_target_decides_what_consolidation_archives(
    tmp_path: Path,
    onnx_embedder: OnnxEmbedder,
    clock: ManualClock,
    target: float,
    archived: bool,
) -> None:
    cfg = Settings(
        _env_file=None,  # type: ignore[call-arg]
        data_dir=tmp_path / "data",
        environment="test",  # type: ignore[arg-type]
        fsrs_retention_target=target,
    )
    opts = ConsolidationOptions(
        cluster=False, merge_duplicates=False, decay=False, dry_run=True
    )  # archive: importance below 0.3 and retrievability below 0.5
    # Never recalled for 30 days: a new memory's retrievability after its default
    # stability (1 day) equals the target, and decays from there (0.42 at 0.7, 0.73 at 0.97).
    report = await _consolidate(
        cfg, onnx_embedder, clock, [TOPICS["baking"][0]], opts, importance=0.1, days_later=30
    )
    assert bool(report.archived) is archived


@hyp_settings(max_examples=50, deadline=None)
@given(
    days=st.floats(min_value=0.5, max_value=3650.0),
    target=st.floats(min_value=0.51, max_value=0.99),
)
def test_a_new_memory_falls_to_the_target_after_the_default_stability(
    days: float, target: float
) -> None:
    fsrs = Fsrs(default_stability=days, retention_target=target)
    state = fsrs.new_state(T0)
    later = T0 + timedelta(days=days)
    assert fsrs.retrievability(state, later) == pytest.approx(target, rel=1e-6)
    # FSRS's own stability (days to 90 %) is the default only at the default target.
    if abs(target - 0.9) > 1e-3:
        assert state.stability != pytest.approx(days, rel=1e-4)
    assert Fsrs(default_stability=days).new_state(T0).stability == pytest.approx(days)
