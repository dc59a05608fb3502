"""Small builders shared by the test suites (real objects, no mocks)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4

import numpy as np

from ww.engine.dynamics import Fsrs
from ww.models import Episode

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def make_episode(session_id: str = "s1", content: str = "hello world", **kw: Any) -> Episode:
    base: dict[str, Any] = {
        "id": uuid4(),
        "session_id": session_id,
        "content": content,
        "timestamp": T0,
        "ingested_at": T0,
        "fsrs": Fsrs().new_state(T0),
    }
    base.update(kw)
    return Episode(**base)


def unit(dim: int, seed: int) -> np.ndarray:
    v = np.random.default_rng(seed).standard_normal(dim).astype(np.float32)
    return v / np.linalg.norm(v)


def at(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)
