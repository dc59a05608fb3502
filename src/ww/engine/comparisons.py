"""Questions that compare events: each event is looked for on its own.

"Which happened first, the purchase of the coffee maker or the malfunction of the stand
mixer?" needs two memories, one per event, and a single query vector lands between them:
a memory that mentions one event in passing (a long message about something else) is far
from the whole question's vector, though close to its own event's words. So when a query
compares (it asks which came *first*, what happened *between* two things, *before* or
*after* one another) and names at least two events of two content words or more, each event
is embedded too, and a candidate's semantic part is its best cosine to the whole query or to
one of its events (``ww.engine.recall``). Other queries are left as they are: splitting
every "and" cost multi-part questions about one topic more than it gained
(docs/benchmarks.md).

Only the candidates the query already found (dense or keyword) are rescored: the events'
vectors are scored inside the index, no new search runs.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from uuid import UUID

import numpy as np
import numpy.typing as npt

from ww.storage.ports import ScoredId
from ww.storage.query_terms import keyword_terms

__all__ = ["MAX_PARTS", "best_part_cosine", "comparison_parts"]

# A comparison of more things than this is a list, better served by the whole query.
MAX_PARTS = 3
_COMPARES = re.compile(r"\b(first|between|before|after|earlier|later|sooner)\b", re.IGNORECASE)
# The lead-in up to the comparison ("Which trip did I take first,", "How many days passed
# between"): what follows it names the events.
_LEAD = re.compile(
    r"^\s*(which|what|who|whom|when|how\s+(many|much|long)(\s+\w+)?)\b[^,?]*?"
    r"\b(first|between|among)\b\s*,?",
    re.IGNORECASE,
)
_JOINS = re.compile(r"\bbetween\b|\band\b|\bor\b|,|;", re.IGNORECASE)
# Two content words make an event ("the coffee maker"); one ("Alex") is a name, which the
# keyword part already matches exactly.
_MIN_TERMS = 2

Within = Callable[[npt.NDArray[np.float32]], Awaitable[Sequence[ScoredId]]]


def comparison_parts(query: str) -> tuple[str, ...]:
    """The events a comparing query names, in order; () when it does not compare two or
    more events (or names more than ``MAX_PARTS``)."""
    if not _COMPARES.search(query):
        return ()
    body = _LEAD.sub("", query.strip().rstrip("?.!"), count=1)
    parts = tuple(
        p
        for p in (piece.strip(" ,;'\"") for piece in _JOINS.split(body))
        if len(keyword_terms(p)) >= _MIN_TERMS
    )
    return parts if 2 <= len(parts) <= MAX_PARTS else ()


async def best_part_cosine(
    cosine: Mapping[UUID, float],
    part_vectors: npt.NDArray[np.float32],
    within: Within,
) -> dict[UUID, float]:
    """Each candidate's best cosine to the whole query (``cosine``) or to one of the parts;
    ``within`` scores a vector against the candidates inside the index."""
    best = dict(cosine)
    for scored in await asyncio.gather(*(within(v) for v in part_vectors)):
        for s in scored:
            if s.score > best.get(s.id, float("-inf")):
                best[s.id] = s.score
    return best
