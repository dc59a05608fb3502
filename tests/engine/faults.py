"""Stand-ins for faults no real store shows on demand, autospec'd to the real classes: the
faulty call passes what it does not fail on to a real object; other methods are the spec's
mocks, so a test that leans on one sees a mock, not a store."""

from __future__ import annotations

from typing import Any
from unittest.mock import create_autospec

from ww.storage.guarded import unwrap
from ww.storage.ports import StoreUnavailableError, VectorIndex

__all__ = ["index_failing_within"]


def index_failing_within(real: VectorIndex) -> Any:
    """A stand-in for ``real`` that answers every search but one restricted to named
    memories (``within``), which times out: the index failing between the dense search
    and the one that scores the candidates the dense search did not find."""

    async def search(*args: object, within: object = None, **kw: object) -> object:
        if within is not None:
            raise StoreUnavailableError("vectors", "timed out")
        return await real.search(*args, **kw)  # type: ignore[arg-type]

    index = create_autospec(type(unwrap(real)), instance=True)
    index.search.side_effect = search
    return index
