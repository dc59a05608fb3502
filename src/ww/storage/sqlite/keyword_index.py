"""In-memory BM25 keyword index for the embedded record store's episodes.

SQLite's FTS5 computes bm25 for every document that matches a query before it can sort, a
few microseconds each, so one common word in a session of 100,000 memories cost 20 ms on
its own. Here each session's postings are numpy-ready arrays: scoring every match of every
query word is one weighted ``bincount`` over the session's documents, well under a
millisecond at that size, so no word has to be left out to stay fast.

The index is derived state: SQLite's ``episodes`` table stays the truth. A session's index
follows every committed write (the record store applies its changes on the writer thread
after COMMIT, in commit order). A session whose first episodes are being written starts
with an empty index that those writes fill, so its first keyword search finds the index
ready; a session that already had episodes when the process started (or that no write has
reached since) is built from ``episodes`` on first use. Changes are keyed by rowid and
idempotent (``put`` replaces, ``remove`` ignores the absent), so a write that commits while
the index is being built is correct whichever of the two sees it first.

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
from collections import Counter, OrderedDict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from itertools import islice

import numpy as np
import numpy.typing as npt
import Stemmer

__all__ = [
    "BM25_B",
    "BM25_K1",
    "DEFAULT_MAX_SESSIONS",
    "KeywordIndex",
    "SessionKeywords",
    "analyze",
    "query_stems",
]

# FTS5's bm25() defaults, so scores keep the scale they had.
BM25_K1 = 1.2
BM25_B = 0.75

_WORD = re.compile(r"[^\W_]+")
# Sessions whose keyword index stays in memory (WW_KEYWORD_INDEX_SESSIONS).
DEFAULT_MAX_SESSIONS = 1000
_BUILD_CHUNK = 4096  # documents analysed at a time by SessionKeywords.build
_STEMMER = Stemmer.Stemmer("porter")
_STEMMER_LOCK = threading.Lock()  # a Stemmer object is not safe to share across threads


def _fold(text: str) -> str:
    text = text.lower()
    if text.isascii():
        return text
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def _words(text: str) -> list[str]:
    return _WORD.findall(_fold(text))


def analyze(text: str) -> list[str]:
    """The stemmed words of ``text``, in order, repeats kept."""
    words = _words(text)
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
        by one, several times faster because the per-word work is vectorised.

        Documents are analysed a chunk at a time and only integer ids are kept, so the
        transient cost stays near that of the postings rather than of every word's string.
        """
        self = cls()
        stem_of: dict[str, int] = {}  # word -> stem id
        stem_ids: dict[str, int] = {}  # stem -> stem id
        # Per chunk, the distinct (stem id << 32 | slot) keys and their counts.
        keys: list[npt.NDArray[np.int64]] = []
        counts: list[npt.NDArray[np.uint16]] = []
        lengths: list[int] = []
        rowids: list[int] = []
        docs = iter(docs)
        while chunk := list(islice(docs, _BUILD_CHUNK)):
            first = len(rowids)
            words: list[str] = []
            for rowid, text in chunk:
                if rowid in self._slot_of:
                    continue
                self._slot_of[rowid] = len(rowids)
                ws = _words(text)  # stemmed below, once per distinct word
                rowids.append(rowid)
                lengths.append(len(ws))
                words += ws
            new = [w for w in dict.fromkeys(words) if w not in stem_of]
            if new:
                with _STEMMER_LOCK:
                    stemmed = _STEMMER.stemWords(new)
                for word, stem in zip(new, stemmed, strict=True):
                    stem_of[word] = stem_ids.setdefault(stem, len(stem_ids))
            ids = np.fromiter((stem_of[w] for w in words), dtype=np.int64, count=len(words))
            slots = np.repeat(np.arange(first, len(rowids), dtype=np.int64), lengths[first:])
            chunk_keys, tf = np.unique((ids << 32) | slots, return_counts=True)
            keys.append(chunk_keys)
            counts.append(np.minimum(tf, 0xFFFF).astype(np.uint16))
        n = len(rowids)
        if n == 0:
            return self
        # Chunks hold increasing slots, so a stable sort on the stem alone orders the
        # postings by (stem, slot).
        all_keys = np.concatenate(keys)
        all_tf = np.concatenate(counts)
        del keys, counts
        order = np.argsort(all_keys >> 32, kind="stable")
        all_keys, all_tf = all_keys[order], all_tf[order]
        del order
        stem_col = all_keys >> 32
        bounds = np.flatnonzero(np.diff(stem_col)) + 1
        names = list(stem_ids)
        firsts = stem_col[np.r_[0, bounds]].tolist() if all_keys.size else []
        slot_col = (all_keys & 0xFFFFFFFF).astype(np.uint32)
        for stem_id, part_slots, part_tf in zip(
            firsts, np.split(slot_col, bounds), np.split(all_tf, bounds), strict=False
        ):
            self._postings[names[stem_id]] = _Postings(
                array("I", part_slots.tobytes()), array("H", part_tf.tobytes())
            )
        self._rowids = array("q", rowids)
        self._lengths = array("I", lengths)
        self._live = bytearray(b"\x01" * n)
        self._total_length = int(sum(lengths))
        return self

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
        live = np.frombuffer(self._live, dtype=np.bool_)
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
    # While a build runs, writes queue here instead of waiting for it (the writer thread
    # must not stall for the seconds a large session takes); the build applies them.
    building: bool = False
    pending: list[tuple[Sequence[int], Sequence[tuple[int, str]]]] = field(default_factory=list)


def _apply(
    keywords: SessionKeywords, remove: Sequence[int], put: Sequence[tuple[int, str]]
) -> None:
    for rowid in remove:
        keywords.remove(rowid)
    for rowid, text in put:
        keywords.put(rowid, text)


class KeywordIndex:
    """The ``SessionKeywords`` of the ``max_sessions`` sessions used last, built on first
    use, safe across threads.

    A session past the cap is forgotten, least recently searched or written first, so a
    workload that writes to ever more sessions holds no more than the cap in memory; a
    forgotten session is built again from its stored rows at its next search, as one
    stored before start-up is.
    """

    def __init__(self, max_sessions: int = DEFAULT_MAX_SESSIONS) -> None:
        if max_sessions < 1:
            raise ValueError("max_sessions must be at least 1")
        self.max_sessions = max_sessions
        self._lock = threading.Lock()  # guards the registry and each entry's build state
        # Least recently used first.
        self._entries: OrderedDict[str, _Entry] = OrderedDict()

    def __contains__(self, session_id: str) -> bool:
        with self._lock:
            return session_id in self._entries

    def _touch(self, session_id: str, entry: _Entry) -> None:
        """Make ``entry`` the session's and the most recently used; forget the least
        recently used past the cap. Called with ``self._lock`` held."""
        self._entries[session_id] = entry
        self._entries.move_to_end(session_id)
        if len(self._entries) <= self.max_sessions:
            return
        for sid in list(self._entries):
            if len(self._entries) <= self.max_sessions:
                return
            # A build in progress is left to finish (its search is waiting on it).
            if sid != session_id and not self._entries[sid].building:
                del self._entries[sid]

    def search(
        self, session_id: str, stems: Sequence[str], limit: int, load: Loader
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]:
        """The session's best ``limit`` matches as (rowids, scores); ``load`` yields the
        session's (rowid, text) pairs from the store when the index has to be built first."""
        with self._lock:
            entry = self._entries.get(session_id) or _Entry()
            self._touch(session_id, entry)
        with entry.lock:
            if entry.keywords is None:
                self._build(entry, load)
            assert entry.keywords is not None
            return entry.keywords.search(stems, limit)

    def warm(self, session_id: str, load: Loader) -> bool:
        """Build the session's index now unless it is held or another thread builds it;
        True when this call built it. Unlike a search it does not make the session the
        most recently used: warming every stored session must not evict one in use."""
        with self._lock:
            if session_id in self._entries or len(self._entries) >= self.max_sessions:
                return False
            entry = _Entry()
            self._entries[session_id] = entry
            self._entries.move_to_end(session_id, last=False)
        with entry.lock:
            if entry.keywords is None:
                self._build(entry, load)
        return True

    def _build(self, entry: _Entry, load: Loader) -> None:
        # Called with entry.lock held. Writes committed while ``load`` reads may show up
        # both in the rows and in the queue; applying them again is harmless (``put``
        # replaces, ``remove`` ignores the absent).
        with self._lock:
            entry.building = True
        try:
            built = SessionKeywords.build(load())
        finally:
            with self._lock:
                entry.building = False
                queued, entry.pending = entry.pending, []
        for remove, put in queued:
            _apply(built, remove, put)
        entry.keywords = built

    def apply(
        self,
        session_id: str,
        put: Sequence[tuple[int, str]] = (),
        remove: Sequence[int] = (),
        *,
        new_session: bool = False,
    ) -> None:
        """Follow a committed write. Calls come from the store's one writer thread in
        commit order, so they never overtake each other. A session not built yet is left
        alone (its build will read the committed rows); one being built queues it.

        ``new_session`` says the write's transaction found no episode of the session
        before its own: the session's index is then exactly this write, so it starts here
        (empty, then ``put``) and every later write keeps it current, instead of a build
        from the stored rows holding up the session's first recall."""
        born: SessionKeywords | None = None
        if new_session and self._get(session_id) is None:
            # Filled before it is published, so no search sees it without this write.
            born = SessionKeywords()
            _apply(born, remove, put)
        with self._lock:
            entry = self._entries.get(session_id)
            if entry is None:
                if born is not None:
                    self._touch(session_id, _Entry(keywords=born))
                return
            self._touch(session_id, entry)
            # A search got here first: its entry (being built or built from the committed
            # rows) takes the write as any other.
            if entry.building:
                entry.pending.append((remove, put))
                return
        with entry.lock:
            if entry.keywords is not None:
                _apply(entry.keywords, remove, put)

    def _get(self, session_id: str) -> _Entry | None:
        with self._lock:
            return self._entries.get(session_id)

    def drop(self, session_id: str) -> None:
        with self._lock:
            self._entries.pop(session_id, None)
