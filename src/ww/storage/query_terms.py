"""The content words of a query, as every keyword search and the relevance model read them.

Backend-neutral: the SQLite and Neo4j keyword searches and the engine's coverage feature
all split a query the same way, so none of them imports another backend's module for it.
"""

from __future__ import annotations

import re

__all__ = ["keyword_terms"]

# Common function words carry no signal for recall but make keyword search walk huge posting
# lists.
_STOPWORDS = frozenset(
    [
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "been",
        "but",
        "by",
        "can",
        "could",
        "did",
        "do",
        "does",
        "for",
        "from",
        "had",
        "has",
        "have",
        "he",
        "her",
        "him",
        "his",
        "how",
        "i",
        "if",
        "in",
        "into",
        "is",
        "it",
        "its",
        "me",
        "my",
        "of",
        "on",
        "or",
        "our",
        "she",
        "so",
        "than",
        "that",
        "the",
        "their",
        "them",
        "then",
        "there",
        "these",
        "they",
        "this",
        "to",
        "too",
        "us",
        "was",
        "we",
        "were",
        "what",
        "when",
        "where",
        "which",
        "who",
        "whom",
        "why",
        "will",
        "with",
        "would",
        "you",
        "your",
    ]
)
_TERM = re.compile(r"\w+", re.UNICODE)
_MAX_TERMS = 32


def keyword_terms(query: str) -> list[str]:
    """Distinct, lower-cased content words of a query, in order of appearance."""
    seen: dict[str, None] = {}
    for term in _TERM.findall(query.lower()):
        if term not in _STOPWORDS and term not in seen:
            seen[term] = None
    return list(seen)[:_MAX_TERMS]
