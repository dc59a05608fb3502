"""In-memory BM25 keyword index for the embedded record store's episodes.

SQLite's FTS5 computes bm25 for every document that matches a query before it can sort, a
few microseconds each, so one common word in a session of 100,000 memories cost 20 ms on
its own. Here each session's postings are numpy-ready arrays: scoring every match of every
query word is one weighted ``bincount`` over the session's documents, well under a
millisecond at that size, so no word has to be left out to stay fast.

The index is derived state: SQLite's ``episodes`` table stays the truth. A session's index
is built from it on first use and then follows every committed write (the record store
applies its changes on the writer thread after COMMIT, in commit order). Changes are keyed
by rowid and idempotent (``put`` replaces, ``remove`` ignores the absent), so a write that
commits while the index is being built is correct whichever of the two sees it first.

Per session, like the FTS5 tables before it: collection statistics (how rare a word is, how
long documents are) come from the session's own documents only, so one session's writes
never move another's scores.

Analysis matches what FTS5's ``porter unicode61 remove_diacritics 2`` did: case folded,
diacritics removed, split at anything that is not a letter or digit, Porter-stemmed.
"""

from __future__ import annotations

import math
import re
import threading
import unicodedata
from array import array
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
import Stemmer

__all__ = ["BM25_B", "BM25_K1", "KeywordIndex", "SessionKeywords", "analyze", "query_stems"]

# FTS5's bm25() defaults, so scores keep the scale they had.
BM25_K1 = 1.2
BM25_B = 0.75

_WORD = re.compile(r"[^\W_]+")
_STEMMER = Stemmer.Stemmer("porter")
_STEMMER_LOCK = threading.Lock()  # a Stemmer object is not safe to share across threads


def _fold(text: str) -> str:
    text = text.lower()
    if text.isascii():
        return text
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def analyze(text: str) -> list[str]:
    """The stemmed words of ``text``, in order, repeats kept."""
    words = _WORD.findall(_fold(text))
    with _STEMMER_LOCK:
        return list(_STEMMER.stemWords(words))


def query_stems(terms: Iterable[str]) -> list[str]:
    """Distinct stems of a query's words, in order of first appearance."""
    return list(dict.fromkeys(stem for term in terms for stem in analyze(term)))


@dataclass(slots=True)
class _Postings:
    slots: array[int] = field(default_factory=lambda: array("I"))
    tf: array[int] = field(default_factory=lambda: array("H"))


class SessionKeywords:
    """One session's postings. Not thread-safe by itself: ``KeywordIndex`` locks it."""

    def __init__(self) -> None:
        self._slot_of: dict[int, int] = {}  # rowid -> slot
        self._rowids = array("q")  # slot -> rowid
        self._lengths = array("I")  # slot -> document length in words
        self._live = bytearray()  # slot -> 1 while the document is indexed
        self._postings: dict[str, _Postings] = {}
        self._total_length = 0

    def __len__(self) -> int:
        return len(self._slot_of)

    @classmethod
    def build(cls, docs: Iterable[tuple[int, str]]) -> SessionKeywords:
        """An index of ``docs`` (rowid, text), built in bulk: the same state as ``put`` one
        by one, several times faster because the per-word work is vectorised."""
        self = cls()
        rowids: list[int] = []
        lengths: list[int] = []
        words: list[str] = []
        for rowid, text in docs:
            if rowid in self._slot_of:
                continue
            self._slot_of[rowid] = len(rowids)
            ws = _WORD.findall(_fold(text))
            rowids.append(rowid)
            lengths.append(len(ws))
            words += ws
        if not rowids:
            return self
        if words:
            self._add_postings(words, lengths)
        self._rowids = array("q", rowids)
        self._lengths = array("I", lengths)
        self._live = bytearray(b"\x01" * len(rowids))
        self._total_length = int(sum(lengths))
        return self

    def _add_postings(self, words: list[str], lengths: list[int]) -> None:
        # Only for a fresh index: document i of ``lengths`` becomes slot i.
        n = len(lengths)
        distinct = list(dict.fromkeys(words))
        with _STEMMER_LOCK:
            stems = _STEMMER.stemWords(distinct)
        stem_ids: dict[str, int] = {}
        word_to_stem = {
            w: stem_ids.setdefault(st, len(stem_ids)) for w, st in zip(distinct, stems, strict=True)
        }
        ids = np.fromiter((word_to_stem[w] for w in words), dtype=np.int64, count=len(words))
        slots = np.repeat(np.arange(n, dtype=np.int64), lengths)
        keys, tf = np.unique(ids * n + slots, return_counts=True)
        key_stem, key_slot = np.divmod(keys, n)
        bounds = np.flatnonzero(np.diff(key_stem)) + 1
        names = list(stem_ids)
        for part_slots, part_tf, first in zip(
            np.split(key_slot, bounds),
            np.split(tf, bounds),
            key_stem[np.r_[0, bounds]],
            strict=True,
        ):
            self._postings[names[int(first)]] = _Postings(
                array("I", part_slots.astype(np.uint32).tobytes()),
                array("H", np.minimum(part_tf, 0xFFFF).astype(np.uint16).tobytes()),
            )

    def put(self, rowid: int, text: str) -> None:
        """Index ``text`` as document ``rowid``, replacing what that rowid held."""
        self.remove(rowid)
        words = analyze(text)
        slot = len(self._rowids)
        self._slot_of[rowid] = slot
        self._rowids.append(rowid)
        self._lengths.append(len(words))
        self._live.append(1)
        self._total_length += len(words)
        for stem, count in Counter(words).items():
            p = self._postings.get(stem)
            if p is None:
                p = self._postings[stem] = _Postings()
            p.slots.append(slot)
            p.tf.append(min(count, 0xFFFF))

    def remove(self, rowid: int) -> None:
        slot = self._slot_of.pop(rowid, None)
        if slot is None:
            return
        self._live[slot] = 0
        self._total_length -= self._lengths[slot]
        # Dead slots stay in the postings (masked) until they outnumber the living.
        if len(self._rowids) > 1024 and 2 * len(self._slot_of) < len(self._rowids):
            self._compact()

    def search(
        self, stems: Sequence[str], limit: int
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]:
        """The best ``limit`` live documents matching any stem, as (rowids, bm25 scores),
        best first; equal scores in rowid order, so the answer (cut included) depends only
        on the stored documents."""
        n_docs = len(self._slot_of)
        empty = np.empty(0, np.int64), np.empty(0, np.float64)
        if n_docs == 0 or limit <= 0:
            return empty
        live = np.frombuffer(self._live, dtype=np.bool_)
        lengths = np.frombuffer(self._lengths, dtype=np.uint32)
        avgdl = self._total_length / n_docs or 1.0
        parts_slots: list[npt.NDArray[np.uint32]] = []
        parts_score: list[npt.NDArray[np.float64]] = []
        for stem in dict.fromkeys(stems):
            p = self._postings.get(stem)
            if p is None:
                continue
            slots = np.frombuffer(p.slots, dtype=np.uint32)
            tf = np.frombuffer(p.tf, dtype=np.uint16)
            keep = live[slots]
            if not keep.all():
                slots, tf = slots[keep], tf[keep]
            df = slots.size
            if df == 0:
                continue
            # FTS5's idf, floored the same way so a word in most documents still counts.
            idf = math.log((n_docs - df + 0.5) / (df + 0.5))
            idf = idf if idf > 0 else 1e-6
            f = tf.astype(np.float64)
            norm = BM25_K1 * (1 - BM25_B + BM25_B * lengths[slots] / avgdl)
            parts_slots.append(slots)
            parts_score.append(idf * (BM25_K1 + 1) * f / (f + norm))
        if not parts_slots:
            return empty
        hit: npt.NDArray[np.intp]
        if len(parts_slots) == 1:
            hit, s = parts_slots[0].astype(np.intp), parts_score[0]
        else:
            summed = np.bincount(
                np.concatenate(parts_slots),
                weights=np.concatenate(parts_score),
                minlength=len(self._rowids),
            )
            hit = np.flatnonzero(summed)
            s = summed[hit].astype(np.float64, copy=False)
        if s.size > limit:
            # Everything tied with the limit-th score stays, so the rowid order decides.
            cut = np.partition(s, s.size - limit)[s.size - limit]
            chosen = s >= cut
            hit, s = hit[chosen], s[chosen]
        rowids = np.frombuffer(self._rowids, dtype=np.int64)[hit]
        order = np.lexsort((rowids, -s))[:limit]
        return rowids[order], s[order]

    def _compact(self) -> None:
        live = np.frombuffer(self._live, dtype=np.uint8).astype(bool)
        new_slot = np.cumsum(live, dtype=np.int64) - 1
        for stem in list(self._postings):
            p = self._postings[stem]
            slots = np.frombuffer(p.slots, dtype=np.uint32)
            keep = live[slots]
            if not keep.any():
                del self._postings[stem]
                continue
            p.slots = array("I", new_slot[slots[keep]].astype(np.uint32).tobytes())
            p.tf = array("H", np.frombuffer(p.tf, dtype=np.uint16)[keep].tobytes())
        rowids = np.frombuffer(self._rowids, dtype=np.int64)[live]
        lengths = np.frombuffer(self._lengths, dtype=np.uint32)[live]
        self._rowids = array("q", rowids.tobytes())
        self._lengths = array("I", lengths.tobytes())
        self._live = bytearray(b"\x01" * len(self._rowids))
        self._slot_of = {int(r): i for i, r in enumerate(rowids)}


Loader = Callable[[], Iterable[tuple[int, str]]]


@dataclass(slots=True)
class _Entry:
    lock: threading.Lock = field(default_factory=threading.Lock)
    keywords: SessionKeywords | None = None  # None until built


class KeywordIndex:
    """Every session's ``SessionKeywords``, built on first use, safe across threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: dict[str, _Entry] = {}

    def search(
        self, session_id: str, stems: Sequence[str], limit: int, load: Loader
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]:
        """The session's best ``limit`` matches as (rowids, scores); ``load`` yields the
        session's (rowid, text) pairs from the store when the index has to be built first."""
        with self._lock:
            entry = self._entries.setdefault(session_id, _Entry())
        with entry.lock:
            if entry.keywords is None:
                entry.keywords = SessionKeywords.build(load())
            return entry.keywords.search(stems, limit)

    def apply(
        self,
        session_id: str,
        put: Sequence[tuple[int, str]] = (),
        remove: Sequence[int] = (),
    ) -> None:
        """Follow a committed write. A session not built yet is left alone: its build will
        read the committed rows."""
        with self._lock:
            entry = self._entries.get(session_id)
        if entry is None:
            return
        with entry.lock:
            if entry.keywords is None:
                return
            for rowid in remove:
                entry.keywords.remove(rowid)
            for rowid, text in put:
                entry.keywords.put(rowid, text)

    def drop(self, session_id: str) -> None:
        with self._lock:
            self._entries.pop(session_id, None)
