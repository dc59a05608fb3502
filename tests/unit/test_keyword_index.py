"""The embedded tier's in-memory BM25 index, against a plain reference implementation."""

from __future__ import annotations

import asyncio
import math
import sqlite3
import tempfile
import threading
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.factories import make_episode
from ww.models import Episode, EpisodeFilter
from ww.storage.ports import IdConflictError
from ww.storage.sqlite.keyword_index import (
    BM25_B,
    BM25_K1,
    KeywordIndex,
    SessionKeywords,
    analyze,
    query_stems,
)
from ww.storage.sqlite.records import SQLiteRecordStore
from ww.storage.sqlite.schema import MIGRATIONS, SCHEMA_VERSION, migrate

WORDS = ["apple", "apples", "river", "rivers", "stone", "quiet", "running", "runs", "café", "x"]


def reference(docs: dict[int, str], stems: list[str], limit: int) -> list[tuple[int, float]]:
    """BM25 as FTS5 defines it, written out the slow way."""
    analysed = {rowid: analyze(text) for rowid, text in docs.items()}
    n = len(analysed)
    if n == 0:
        return []
    avgdl = sum(len(w) for w in analysed.values()) / n or 1.0
    scores: dict[int, float] = {}
    for stem in dict.fromkeys(stems):
        df = sum(1 for w in analysed.values() if stem in w)
        if df == 0:
            continue
        idf = math.log((n - df + 0.5) / (df + 0.5))
        idf = idf if idf > 0 else 1e-6
        for rowid, words in analysed.items():
            tf = Counter(words)[stem]
            if tf:
                norm = BM25_K1 * (1 - BM25_B + BM25_B * len(words) / avgdl)
                scores[rowid] = scores.get(rowid, 0.0) + idf * tf * (BM25_K1 + 1) / (tf + norm)
    return sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))[:limit]


def ranked(index: SessionKeywords, stems: list[str], limit: int) -> list[tuple[int, float]]:
    rowids, scores = index.search(stems, limit)
    return list(zip(rowids.tolist(), scores.tolist(), strict=True))


def assert_same(got: list[tuple[int, float]], want: list[tuple[int, float]]) -> None:
    assert [r for r, _ in got] == [r for r, _ in want]
    assert [s for _, s in got] == pytest.approx([s for _, s in want], rel=1e-9)


texts = st.lists(st.sampled_from(WORDS), min_size=0, max_size=8).map(" ".join)
ops = st.lists(
    st.tuples(st.sampled_from(["put", "remove"]), st.integers(1, 40), texts), max_size=80
)
queries = st.lists(st.sampled_from(WORDS), min_size=1, max_size=4)


@settings(max_examples=150, deadline=None)
@given(ops=ops, query=queries, limit=st.integers(1, 50))
def test_search_matches_reference_after_any_writes(
    ops: list[tuple[str, int, str]], query: list[str], limit: int
) -> None:
    index = SessionKeywords()
    docs: dict[int, str] = {}
    for op, rowid, text in ops:
        if op == "put":
            index.put(rowid, text)
            docs[rowid] = text
        else:
            index.remove(rowid)
            docs.pop(rowid, None)
    stems = query_stems(query)
    assert len(index) == len(docs)
    assert_same(ranked(index, stems, limit), reference(docs, stems, limit))


@settings(max_examples=60, deadline=None)
@given(docs=st.dictionaries(st.integers(1, 10_000), texts, max_size=60), query=queries)
def test_bulk_build_equals_one_by_one(docs: dict[int, str], query: list[str]) -> None:
    one_by_one = SessionKeywords()
    for rowid, text in docs.items():
        one_by_one.put(rowid, text)
    bulk = SessionKeywords.build(docs.items())
    stems = query_stems(query)
    assert_same(ranked(bulk, stems, 100), ranked(one_by_one, stems, 100))
    assert_same(ranked(bulk, stems, 100), reference(docs, stems, 100))


def test_compaction_keeps_answers() -> None:
    index = SessionKeywords()
    docs = {i: f"river stone {'quiet ' * (i % 3)}" for i in range(3000)}
    for rowid, text in docs.items():
        index.put(rowid, text)
    for rowid in range(0, 3000, 4):
        if rowid % 3:
            index.remove(rowid)
            del docs[rowid]
    for rowid in range(1, 2000):  # far more dead slots than live ones: compacts
        index.remove(rowid)
        docs.pop(rowid, None)
    index.put(5000, "quiet quiet river")
    docs[5000] = "quiet quiet river"
    stems = query_stems(["quiet", "river"])
    assert len(index) == len(docs)
    assert_same(ranked(index, stems, 20), reference(docs, stems, 20))


def test_analysis_folds_case_diacritics_and_stems() -> None:
    assert analyze("Running CAFÉ naïve_dogs") == ["run", "cafe", "naiv", "dog"]
    assert query_stems(["apples", "apple", "Apple"]) == ["appl"]


def test_a_word_in_most_documents_still_ranks() -> None:
    index = SessionKeywords.build([(1, "stone"), (2, "stone"), (3, "stone river")])
    rowids, scores = index.search(["stone"], 10)
    assert rowids.tolist() == [1, 2, 3]
    assert (scores > 0).all()


def test_index_builds_once_and_follows_writes_only_when_built() -> None:
    index = KeywordIndex()
    loads: list[int] = []

    def load() -> list[tuple[int, str]]:
        loads.append(1)
        return [(1, "river stone"), (2, "quiet river")]

    index.apply("s", put=[(3, "river")])  # not built yet: the build will read the rows
    assert index.search("s", ["river"], 10, load)[0].tolist() == [1, 2]
    index.apply("s", put=[(3, "river")], remove=[1])
    assert index.search("s", ["river"], 10, load)[0].tolist() == [3, 2]
    assert len(loads) == 1
    index.drop("s")
    assert index.search("s", ["river"], 10, load)[0].tolist() == [1, 2]
    assert len(loads) == 2
    assert index.search("other", ["river"], 10, list)[0].tolist() == []


def test_writes_during_a_build_queue_instead_of_waiting() -> None:
    index = KeywordIndex()
    finished: list[bool] = []

    def write_now() -> None:
        index.apply("s", put=[(2, "quiet river")], remove=[1])
        finished.append(True)

    def load() -> list[tuple[int, str]]:
        # A write committed while the rows are read: the writer must not wait for the build.
        writer = threading.Thread(target=write_now)
        writer.start()
        writer.join(timeout=5)
        assert finished == [True]
        return [(1, "river stone")]

    assert index.search("s", ["river"], 10, load)[0].tolist() == [2]


def test_migration_drops_the_old_episode_fts_tables(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "old.sqlite3", isolation_level=None)
    for step in MIGRATIONS[:4]:
        assert isinstance(step, str)
        conn.executescript(step)
    conn.execute("PRAGMA user_version = 4")
    old = "fts_" + "0123456789abcdef" * 2
    conn.execute(
        f"CREATE VIRTUAL TABLE {old} USING fts5(content, content='episodes', content_rowid='rowid')"
    )
    kind = "fts_entity_" + "ab" * 16
    conn.execute(f"CREATE VIRTUAL TABLE {kind} USING fts5(text)")
    assert migrate(conn) == 4
    names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
    assert not any(n.startswith(old) for n in names)
    assert kind in names  # entities and skills keep their FTS5 tables
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION


async def test_store_index_skips_rolled_back_writes_and_survives_restart(tmp_path: Path) -> None:
    store = SQLiteRecordStore(tmp_path / "ww.sqlite3")
    await store.open()
    kept = make_episode("s1", "granite quarry visit")
    await store.insert_episodes("s1", [kept])
    assert [h.id for h in await store.keyword_search("s1", "granite", EpisodeFilter(), 5)] == [
        kept.id
    ]
    # The batch fails on the second (taken) id after the first row went in: all rolled back.
    fresh = make_episode("s1", "granite marble")
    with pytest.raises(IdConflictError):
        await store.insert_episodes("s1", [fresh, kept])
    assert await store.keyword_search("s1", "marble", EpisodeFilter(), 5) == []
    before = await store.keyword_search("s1", "granite quarry", EpisodeFilter(), 5)
    await store.close()

    reopened = SQLiteRecordStore(tmp_path / "ww.sqlite3")
    await reopened.open()
    try:
        assert await reopened.keyword_search("s1", "granite quarry", EpisodeFilter(), 5) == before
        assert await reopened.keyword_search("s1", "marble", EpisodeFilter(), 5) == []
    finally:
        await reopened.close()


# -- a new session's index is kept by its writes, never built at its first search ---------
def _no_build() -> list[tuple[int, str]]:
    raise AssertionError("the index was rebuilt from the stored rows")


def test_a_new_sessions_first_write_starts_its_index() -> None:
    index = KeywordIndex()
    index.apply("s", put=[(1, "river stone"), (2, "quiet river")], new_session=True)
    assert index.search("s", ["river"], 10, _no_build)[0].tolist() == [1, 2]
    index.apply("s", put=[(3, "stone")], remove=[1])
    assert index.search("s", ["stone"], 10, _no_build)[0].tolist() == [3]
    assert index.search("other", ["river"], 10, list)[0].tolist() == []


def test_a_search_that_came_first_keeps_its_entry() -> None:
    index = KeywordIndex()
    # The search built the session from rows that already hold the commit; the write's
    # own view of the session (new) must not replace that entry with a narrower one.
    stored = [(1, "river"), (2, "river stone")]
    assert index.search("s", ["river"], 10, lambda: stored)[0].tolist() == [1, 2]
    index.apply("s", put=[(2, "river stone")], new_session=True)
    assert index.search("s", ["river"], 10, _no_build)[0].tolist() == [1, 2]


def _stems(word: str) -> list[str]:
    return query_stems([word])


async def test_store_keeps_a_new_sessions_index_from_its_first_write(tmp_path: Path) -> None:
    store = SQLiteRecordStore(tmp_path / "ww.sqlite3")
    await store.open()
    try:
        first = [make_episode("s1", f"note {i} about the harbour") for i in range(3)]
        await store.insert_episodes("s1", first)
        latest = make_episode("s1", "zeppelin sighted over the harbour")
        await store.insert_episodes("s1", [latest])
        await store.insert_episodes("s2", [make_episode("s2", "another zeppelin")])
        # The term written just before answers from the kept index, without a rebuild...
        rowids, _ = store.keywords.search("s1", _stems("zeppelin"), 10, _no_build)
        assert len(rowids) == 1
        hits = await store.keyword_search("s1", "zeppelin", EpisodeFilter(), 10)
        assert [h.id for h in hits] == [latest.id]  # ...and never another session's row
        # Updates and deletes keep following it.
        await store.update_episode("s1", first[0].model_copy(update={"content": "a dirigible"}))
        await store.delete_episode("s1", latest.id)
        assert await store.keyword_search("s1", "zeppelin", EpisodeFilter(), 10) == []
        hits = await store.keyword_search("s1", "dirigible", EpisodeFilter(), 10)
        assert [h.id for h in hits] == [first[0].id]
        # A deleted session starts again from its next first write, without the old rows.
        await store.delete_session("s1")
        again = make_episode("s1", "harbour at dawn")
        await store.insert_episodes("s1", [again])
        assert len(store.keywords.search("s1", _stems("harbour"), 10, _no_build)[0]) == 1
    finally:
        await store.close()


async def test_insert_once_starts_a_new_sessions_index(tmp_path: Path) -> None:
    store = SQLiteRecordStore(tmp_path / "ww.sqlite3")
    await store.open()
    try:
        ep = make_episode("s1", "lighthouse keeper", external_id="t1")
        assert await store.insert_new_external("s1", [ep], all_or_nothing=False) == {}
        assert len(store.keywords.search("s1", _stems("lighthouse"), 10, _no_build)[0]) == 1
    finally:
        await store.close()


async def test_a_session_stored_before_the_process_still_builds_on_first_use(
    tmp_path: Path,
) -> None:
    store = SQLiteRecordStore(tmp_path / "ww.sqlite3")
    await store.open()
    old = make_episode("s1", "granite quarry")
    await store.insert_episodes("s1", [old])
    await store.close()
    reopened = SQLiteRecordStore(tmp_path / "ww.sqlite3")
    await reopened.open()
    try:
        # Not new: the write must not start an index that would lack the stored row.
        later = make_episode("s1", "granite steps")
        await reopened.insert_episodes("s1", [later])
        hits = await reopened.keyword_search("s1", "granite", EpisodeFilter(), 10)
        assert {h.id for h in hits} == {old.id, later.id}
    finally:
        await reopened.close()


store_ops = st.lists(
    st.tuples(st.sampled_from(["insert", "update", "delete"]), st.integers(0, 7), texts),
    min_size=1,
    max_size=25,
)


@settings(max_examples=25, deadline=None)
@given(ops=store_ops, query=queries)
def test_kept_index_equals_a_build_from_the_stored_rows(
    ops: list[tuple[str, int, str]], query: list[str]
) -> None:
    async def run(path: Path) -> None:
        store = SQLiteRecordStore(path)
        await store.open()
        try:
            live: dict[int, Episode] = {}
            for op, key, text in ops:
                ep = live.get(key)
                if op == "insert" or ep is None:
                    new = make_episode("s1", text)
                    await store.insert_episodes("s1", [new])
                    live[key] = new
                elif op == "update":
                    changed = ep.model_copy(update={"content": text})
                    await store.update_episode("s1", changed)
                    live[key] = changed
                else:
                    await store.delete_episode("s1", ep.id)
                    del live[key]
            rows = await store.db.read(
                lambda c: c.execute(
                    "SELECT rowid, content FROM episodes WHERE session_id = 's1'"
                ).fetchall()
            )
            stems = query_stems(query)
            kept = store.keywords.search("s1", stems, 50, _no_build)
            built = SessionKeywords.build([(r[0], r[1]) for r in rows])
            assert_same(
                list(zip(kept[0].tolist(), kept[1].tolist(), strict=True)),
                ranked(built, stems, 50),
            )
        finally:
            await store.close()

    with tempfile.TemporaryDirectory() as tmp:
        asyncio.run(run(Path(tmp) / "ww.sqlite3"))


# -- only the most recently used sessions stay in memory ------------------------------------
async def test_the_least_recently_used_session_is_forgotten_and_rebuilt(tmp_path: Path) -> None:
    store = SQLiteRecordStore(tmp_path / "ww.sqlite3", keyword_sessions=2)
    await store.open()
    try:
        written = {
            s: [make_episode(s, f"{s} note {i} about the harbour") for i in range(3)]
            for s in ("s1", "s2", "s3")
        }
        await store.insert_episodes("s1", written["s1"])
        await store.insert_episodes("s2", written["s2"])
        await store.keyword_search("s1", "harbour", EpisodeFilter(), 10)  # s1 used after s2
        await store.insert_episodes("s3", written["s3"])
        assert ("s1" in store.keywords, "s2" in store.keywords, "s3" in store.keywords) == (
            True,
            False,
            True,
        )
        # The forgotten session is built again from its rows, and finds all of them.
        hits = await store.keyword_search("s2", "harbour", EpisodeFilter(), 10)
        assert {h.id for h in hits} == {e.id for e in written["s2"]}
        assert "s2" in store.keywords and "s3" in store.keywords and "s1" not in store.keywords
        hits = await store.keyword_search("s1", "harbour", EpisodeFilter(), 10)
        assert {h.id for h in hits} == {e.id for e in written["s1"]}
    finally:
        await store.close()


def test_the_cap_is_at_least_one_session() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        KeywordIndex(0)


# -- loaded ahead of the first recall after a restart ---------------------------------------
async def test_warm_loads_the_most_recently_written_sessions_up_to_the_cap(
    tmp_path: Path,
) -> None:
    path = tmp_path / "ww.sqlite3"
    store = SQLiteRecordStore(path)
    await store.open()
    written = {
        s: [make_episode(s, f"{s} note {i} about the harbour") for i in range(3)]
        for s in ("s1", "s2", "s3")
    }
    try:
        for s in ("s1", "s2", "s3"):
            await store.insert_episodes(s, written[s])
    finally:
        await store.close()

    # A restart: nothing is held in memory until the sessions are warmed.
    store = SQLiteRecordStore(path, keyword_sessions=2)
    await store.open()
    try:
        assert not any(s in store.keywords for s in written)
        assert await store.warm() == 2
        assert ("s1" in store.keywords, "s2" in store.keywords, "s3" in store.keywords) == (
            False,
            True,
            True,
        )
        assert await store.warm() == 0  # nothing left to load within the cap
        # What was loaded answers as a built-on-first-use index does.
        hits = await store.keyword_search("s3", "harbour", EpisodeFilter(), 10)
        assert {h.id for h in hits} == {e.id for e in written["s3"]}
        hits = await store.keyword_search("s1", "harbour", EpisodeFilter(), 10)
        assert {h.id for h in hits} == {e.id for e in written["s1"]}
    finally:
        await store.close()


def test_warm_does_not_evict_a_session_in_use() -> None:
    index = KeywordIndex(1)
    index.apply("busy", put=[(1, "harbour crane")], new_session=True)
    assert not index.warm("idle", lambda: [(2, "harbour boat")])
    assert "busy" in index and "idle" not in index
