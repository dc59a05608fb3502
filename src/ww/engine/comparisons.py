"""Questions that compare events: each event is looked for on its own.

"Which happened first, the purchase of the coffee maker or the malfunction of the stand
mixer?" needs two memories, one per event, and a single query vector lands between them:
a memory that mentions one event in passing (a long message about something else) is far
from the whole question's vector, though close to its own event's words. So when a query
compares (it asks which came *first*, what happened *between* two things, *before* or
*after* one another) and names at least two events of two content words or more, each event
is embedded too, and a candidate's semantic part is its best cosine to the whole query or to
one of its events (``ww.engine.recall``). Queries without those words are left whole: splitting
every "and" cost multi-part questions about one topic more than it gained
(docs/benchmarks.md). The trigger words are common, so a query that only sounds like a
comparison ("what did I do after work on Friday and Saturday?") is split as well; that costs
little, since a part only ever raises a candidate to its own best cosine.

Only the candidates the query already found (dense or keyword) are rescored: the events'
vectors are scored inside the index, no new search runs. The events are embedded beside the
query, and a failure on this path (the embedder's circuit open, the index gone since the
main search) leaves the recall as it would have been without it, with a warning, never an
error: it is a refinement of the ranking, not a part of the answer.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from uuid import UUID

import numpy as np
import numpy.typing as npt

from ww.embedding.base import EmbeddingError
from ww.storage.ports import ScoredId, StoreUnavailableError
from ww.storage.query_terms import keyword_terms

__all__ = ["MAX_PARTS", "best_part_cosine", "comparison_parts", "embed_parts"]

log = logging.getLogger(__name__)

# A comparison of more things than this is a list, better served by the whole query.
MAX_PARTS = 3
_COMPARES = re.compile(r"\b(first|between|before|after|earlier|later|sooner)\b", re.IGNORECASE)
# The lead-in up to the comparison ("Which trip did I take first,", "How many days passed
# between"): what follows it names the events.
_LEAD = re.compile(
    r"^\s*(which|what|who|whom|when|how\s+(many|much|long)(\s+\w+)?)\b[^,?:]*?"
    r"\b(first|between|among)\b\s*[,:]?",
    re.IGNORECASE,
)
_JOINS = re.compile(r"\bbetween\b|\band\b|\bor\b|,|;", re.IGNORECASE)
# Two content words make an event ("the coffee maker"); one ("Alex") is a name, which the
# keyword part already matches exactly.
_MIN_TERMS = 2

Within = Callable[[npt.NDArray[np.float32]], Awaitable[Sequence[ScoredId]]]
EmbedMany = Callable[[Sequence[str]], Awaitable[npt.NDArray[np.float32]]]


def comparison_parts(query: str) -> tuple[str, ...]:
    """The events a comparing query names, in order; () when it does not compare two or
    more events (or names more than ``MAX_PARTS``)."""
    if not _COMPARES.search(query):
        return ()
    body = _LEAD.sub("", query.strip().rstrip("?.!"), count=1)
    parts = tuple(
        p
        for p in (piece.strip(" ,;:'\"") for piece in _JOINS.split(body))
        if len(keyword_terms(p)) >= _MIN_TERMS
    )
    return parts if 2 <= len(parts) <= MAX_PARTS else ()


async def embed_parts(
    embed_many: EmbedMany, parts: Sequence[str]
) -> npt.NDArray[np.float32] | None:
    """The parts' vectors; None without parts, or (logged) if the embedder cannot give them
    now."""
    if not parts:
        return None
    try:
        return await embed_many(parts)
    except (EmbeddingError, StoreUnavailableError) as exc:
        # The exception's type only: its text could quote the query.
        log.warning(
            "comparison events not embedded (%s): recall uses the query alone", type(exc).__name__
        )
        return None


async def best_part_cosine(
    cosine: Mapping[UUID, float],
    part_vectors: npt.NDArray[np.float32],
    within: Within,
) -> dict[UUID, float]:
    """Each candidate's best cosine to the whole query (``cosine``) or to one of the parts;
    ``within`` scores a vector against the candidates inside the index. If the index cannot
    answer, the query's own cosines stand (logged)."""
    best = dict(cosine)
    try:
        found = await asyncio.gather(*(within(v) for v in part_vectors))
    except StoreUnavailableError as exc:
        log.warning(
            "comparison events not scored (%s): recall uses the query alone", type(exc).__name__
        )
        return best
    for scored in found:
        for s in scored:
            if s.score > best.get(s.id, float("-inf")):
                best[s.id] = s.score
    return best
