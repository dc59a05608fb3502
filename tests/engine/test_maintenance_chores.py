"""The maintenance loop's chores: the API's expired idempotency keys go on its passes."""

from __future__ import annotations

from datetime import timedelta

from tests.conftest import ManualClock
from tests.engine.test_engine import service
from ww.api.idempotency import Idempotency
from ww.config import Settings
from ww.embedding import OnnxEmbedder
from ww.engine import build_engine
from ww.engine.maintenance import Maintenance
from ww.storage.factory import idempotency_store
from ww.storage.ports.idempotency import ClaimState, Horizon, Reservation, StoredAnswer


async def test_a_maintenance_pass_purges_expired_idempotency_keys(
    settings: Settings, onnx_embedder: OnnxEmbedder, clock: ManualClock
) -> None:
    engine = build_engine(settings, clock=clock, embedder=service(onnx_embedder))
    await engine.open()
    try:
        idem = Idempotency(idempotency_store(engine.records), timedelta(hours=1), clock)

        async def broken() -> None:
            raise RuntimeError("a chore that fails every time")

        # A failing chore is logged; the chores after it still run.
        upkeep = Maintenance(engine, chores=[broken, idem.purge])
        now = clock()
        week_ago = now - timedelta(days=7)
        await idem.store.claim("s1", "k", Reservation("fp", "t1", now), Horizon(week_ago, week_ago))
        await idem.store.complete("s1", "k", "t1", StoredAnswer(201, "{}"), now)
        await upkeep.run_once()  # still within the hour: kept
        assert await idem.purge() == 0
        clock.advance(hours=1, seconds=1)
        await upkeep.run_once()
        later = clock()
        again = await idem.store.claim(
            "s1", "k", Reservation("fp", "t2", later), Horizon(week_ago, week_ago)
        )
        assert again.state is ClaimState.NEW  # gone, though this claim would still see it
    finally:
        await engine.close()
