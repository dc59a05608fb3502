"""The Forward-Forward (FF) encoder: a learned, identity-initialised map on query vectors.

The layer is ``W = I + ΔW`` applied to the query; its activity for a (query, memory) pair is
``a = W·q + m`` and its goodness ``G = ‖a‖²``. Training follows the Forward-Forward
objective, one layer, no backpropagation through anything else: a positive pair (the
memory helped) pushes ``G`` above a threshold, a negative pair pushes it below
(``softplus(θ - G)`` and ``softplus(G - θ)``). The threshold for a pair is its goodness
under the identity, ``θ = ‖q + m‖²``, so an untrained encoder scores every pair exactly 0.5
and has no effect on ranking; the ranking feature is ``sigmoid(G - θ)``.

A fresh encoder is the identity, never random: recall must not change until something has
been learned. Weights are persisted per session (learning in one session must not move
another's ranking) as a blob with a format header and a training version.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

__all__ = ["FORMAT_VERSION", "FFEncoder", "FFFormatError"]

FORMAT_VERSION = 1
_MAGIC = b"WWFF"
_HEADER = struct.Struct("<4sII")  # magic, format version, dimension

F32 = npt.NDArray[np.float32]


class FFFormatError(ValueError):
    """A stored encoder blob this release cannot read."""


def _sigmoid(x: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    out: npt.NDArray[np.float64] = 0.5 * (1.0 + np.tanh(0.5 * x))  # overflow-free logistic
    return out


@dataclass(frozen=True, slots=True)
class FFEncoder:
    dim: int
    delta: F32 | None = None  # ΔW; None is exactly the identity
    version: int = 0  # training steps applied (0 = identity)

    @classmethod
    def identity(cls, dim: int) -> FFEncoder:
        return cls(dim)

    @property
    def is_identity(self) -> bool:
        return self.delta is None or not np.any(self.delta)

    def encode(self, query: F32) -> npt.NDArray[np.float64]:
        q = np.asarray(query, dtype=np.float64)
        if self.delta is None:
            return q
        return q + self.delta.astype(np.float64) @ q

    def goodness(self, query: F32, memory: F32) -> float:
        a = self.encode(query) + np.asarray(memory, dtype=np.float64)
        return float(a @ a)

    def features(self, query: F32, memories: F32) -> npt.NDArray[np.float64]:
        """``sigmoid(G_W - G_I)`` for each row of ``memories``; all 0.5 for the identity.

        ``G_W - G_I = 2·Δq·(q + m) + ‖Δq‖²`` with ``Δq = ΔW·q``, so one matrix-vector
        product serves every candidate.
        """
        mem = np.asarray(memories, dtype=np.float64).reshape(-1, self.dim)
        if self.delta is None:
            return np.full(mem.shape[0], 0.5)
        q = np.asarray(query, dtype=np.float64)
        dq = self.delta.astype(np.float64) @ q
        gain = 2.0 * (dq @ q + mem @ dq) + dq @ dq
        return _sigmoid(gain)

    def train(self, query: F32, memory: F32, *, positive: bool, rate: float) -> FFEncoder:
        """One Forward-Forward step on a pair; ``rate`` already carries the error size."""
        if rate <= 0:
            return self
        q = np.asarray(query, dtype=np.float64)
        m = np.asarray(memory, dtype=np.float64)
        delta = (
            np.zeros((self.dim, self.dim)) if self.delta is None else self.delta.astype(np.float64)
        )
        a = q + delta @ q + m
        p = float(_sigmoid(np.array(a @ a - (q + m) @ (q + m))))
        # d softplus(θ-G)/dG = -(1-p) for a positive pair; d softplus(G-θ)/dG = p otherwise.
        dloss_dg = -(1.0 - p) if positive else p
        delta -= rate * dloss_dg * 2.0 * np.outer(a, q)
        return FFEncoder(self.dim, delta.astype(np.float32), self.version + 1)

    # -- persistence -----------------------------------------------------------------------
    def to_bytes(self) -> bytes:
        delta = np.zeros((self.dim, self.dim), np.float32) if self.delta is None else self.delta
        header = _HEADER.pack(_MAGIC, FORMAT_VERSION, self.dim)
        return header + np.ascontiguousarray(delta, dtype="<f4").tobytes()

    @classmethod
    def from_bytes(cls, blob: bytes, version: int) -> FFEncoder:
        if len(blob) < _HEADER.size:
            raise FFFormatError("encoder blob is truncated")
        magic, fmt, dim = _HEADER.unpack_from(blob)
        if magic != _MAGIC or fmt != FORMAT_VERSION:
            raise FFFormatError(f"unknown encoder format {magic!r} v{fmt}")
        body = blob[_HEADER.size :]
        if len(body) != dim * dim * 4:
            raise FFFormatError("encoder blob size does not match its dimension")
        delta = np.frombuffer(body, dtype="<f4").reshape(dim, dim).astype(np.float32)
        return cls(dim, delta, version)
