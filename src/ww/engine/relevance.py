"""A recall hit's calibrated ``relevance``: the probability-like chance it answers the query.

The fused ``score`` ranks one recall's candidates well but is no probability: its keyword
part is scaled within the recall (min-max), so a poor best match still scores ~0.3. The
relevance uses only evidence that means the same in every recall and session:

- the cosine of query and memory (the embedder's own scale), and
- keyword coverage: the share of the query's content words that the memory contains,

combined by a logistic model, ``relevance = 1 / (1 + exp(-(a·cosine + b·coverage + c)))``.
Its coefficients were fitted by ``bench/relevance_fit.py`` on synthetic personal facts
(template sentences and questions, none from any benchmark), each memory a chat turn of one
to five sentences and each question in other words than its fact: the memory that answers
a question against the best-looking wrong memory of every question, and against the best
memory for questions memory cannot answer (a fact not stored, a near miss about a stored
fact's subject). Rerun the script after changing the embedding model; docs/benchmarks.md
reports how it separates answerable from unanswerable questions, and right first hits from
wrong ones, on data it was not fitted on.
"""

from __future__ import annotations

import math
import re
from collections.abc import Collection

__all__ = ["COEFFICIENTS", "DEFAULT_MIN_RELEVANCE", "coverage", "relevance"]

# (a, b, c) from bench/relevance_fit.py (40 sessions, seed 11, L2-regularised with C = 1)
# with the vendored all-MiniLM-L6-v2 (int8). Its facts sit inside chat turns and its
# questions use other words, so the classes overlap as they do in real conversations and
# the fit is a probability rather than a step (held-out AUROC 0.855).
COEFFICIENTS: tuple[float, float, float] = (4.52, 4.94, -3.98)
# The threshold docs/benchmarks.md reports precision and recall at: the even-odds point.
DEFAULT_MIN_RELEVANCE = 0.5
_WORD = re.compile(r"\w+", re.UNICODE)


def coverage(terms: Collection[str], content: str) -> float:
    """Share of ``terms`` (the query's content words, lower-cased) found in ``content``."""
    if not terms:
        return 0.0
    words = set(_WORD.findall(content.lower()))
    return sum(1 for t in terms if t in words) / len(terms)


def relevance(cosine: float, cover: float) -> float:
    a, b, c = COEFFICIENTS
    z = a * cosine + b * cover + c
    if z < -700:  # exp would overflow; the probability is 0 to double precision
        return 0.0
    return 1.0 / (1.0 + math.exp(-z))
