"""Small builders shared by the test suites (real objects, no mocks)."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
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


class HashEmbedder:
    """A real, deterministic ``Embedder``: a unit vector seeded by the text's hash.

    Used where a second model identity or another dimension is the point of the test.
    """

    def __init__(self, dimension: int = 384, model_id: str = "hash-embedder") -> None:
        self._dimension = dimension
        self._model_id = model_id

    @property
    def model_id(self) -> str:
        return self._model_id

    @property
    def dimension(self) -> int:
        return self._dimension

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        rows = [
            unit(self._dimension, int.from_bytes(hashlib.sha256(t.encode()).digest()[:8], "big"))
            for t in texts
        ]
        return np.stack(rows) if rows else np.zeros((0, self._dimension), np.float32)
