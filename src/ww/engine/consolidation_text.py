"""Naming a cluster and choosing its medoid (pure functions, deterministic)."""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

__all__ = ["distinctive_terms", "medoid", "tokens"]

_WORD = re.compile(r"[^\W\d_][\w'-]*", re.UNICODE)
# A short English stop list: names made of "the", "was" or "with" say nothing.
# One string of words reads better here than a 120-line list literal.
_STOP = frozenset(
    """
    a about above after again against all also am an and any are as at be because been
    before being below between both but by can could did do does doing down during each few
    for from further had has have having he her here hers him his how i if in into is it
    its just me more most my no nor not now of off on once only or other our out over own
    same she should so some such than that the their them then there these they this those
    through to too under until up very was we were what when where which while who whom why
    will with would you your yours yes ok okay
    """.split()  # noqa: SIM905
)


def tokens(text: str) -> set[str]:
    """Distinct lower-case words of at least three letters, stop words removed."""
    return {
        w
        for w in (m.group(0).lower() for m in _WORD.finditer(text))
        if len(w) >= 3 and w not in _STOP
    }


def distinctive_terms(
    cluster: Sequence[str], session_df: Counter[str], n_docs: int, k: int = 3
) -> list[str]:
    """The ``k`` terms most typical of the cluster and rare in the session: TF-IDF with the
    cluster as the document (term weight = share of member episodes containing it times the
    smoothed inverse document frequency over the session). Ties break alphabetically."""
    df = Counter(t for text in cluster for t in tokens(text))
    scored = [(df[t] / len(cluster) * math.log((1 + n_docs) / (1 + session_df[t])), t) for t in df]
    scored.sort(key=lambda s: (-s[0], s[1]))
    return [t for _, t in scored[:k]]


def medoid(vectors: npt.NDArray[np.float64]) -> int:
    """Index of the member most similar to all the others (sum of cosines); first on ties."""
    sums = (vectors @ vectors.T).sum(axis=1)
    return int(np.argmax(sums))
