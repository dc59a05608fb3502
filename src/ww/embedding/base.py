"""The contract every text embedder in World Weaver satisfies."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

__all__ = ["Embedder", "EmbeddingError", "Windowed"]


class EmbeddingError(RuntimeError):
    """The embedding model cannot be loaded or run; the message says what to change."""


@runtime_checkable
class Embedder(Protocol):
    """Turns texts into unit-length vectors.

    Implementations must be safe to call from several threads at once, because the
    service runs inference on a worker thread while CLI tools may call it directly.
    """

    @property
    def model_id(self) -> str:
        """A stable name for the model, stored next to vectors to detect model changes."""
        ...

    @property
    def dimension(self) -> int:
        """Length of every vector this embedder returns."""
        ...

    def embed(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        """Embed ``texts`` in order.

        Returns a float32 array of shape ``(len(texts), dimension)`` whose rows have L2
        norm 1; an empty input gives shape ``(0, dimension)``.
        """
        ...


@runtime_checkable
class Windowed(Protocol):
    """An embedder that can split a long text into the pieces it sees whole.

    Optional: an :class:`Embedder` without it is taken to see every text whole, so a long
    memory gets one vector. With it, the windows after the first become further vectors of
    the memory, and every word of it is searchable by meaning.
    """

    def windows(self, text: str) -> list[str]:
        """``text``'s overlapping windows in order, each short enough to be embedded
        without truncation; the first is what ``embed([text])`` sees. At least one (an
        empty text gives ``[text]``)."""
        ...
