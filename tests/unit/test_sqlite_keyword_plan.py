"""SQLite keyword search ranks a bounded number of documents (``plan_keyword_query``)."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

from tests.factories import make_episode
from ww.config import Settings
from ww.models import Episode, EpisodeFilter
from ww.storage import SQLiteRecordStore
from ww.storage.factory import build_record_store
from ww.storage.sqlite_fts import KeywordPlan, plan_keyword_query

T0 = datetime(2025, 1, 1, tzinfo=UTC)


def _table(docs: list[str]) -> sqlite3.Connection:
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE VIRTUAL TABLE f USING fts5(content, tokenize='porter unicode61')")
    conn.executemany("INSERT INTO f (rowid, content) VALUES (?, ?)", enumerate(docs, 1))
    return conn


def test_every_word_is_ranked_when_the_matches_fit() -> None:
    conn = _table(["alpha beta", "beta gamma", "gamma"])
    plan = plan_keyword_query(conn, "f", ["gamma", "missing", "alpha"], budget=10)
    assert plan == KeywordPlan('"gamma" OR "alpha"', newest_only=False)


def test_words_absent_from_the_session_give_no_query() -> None:
    conn = _table(["alpha beta"])
    assert plan_keyword_query(conn, "f", ["zeta", "eta"], budget=10) is None


def test_common_words_are_left_out_rarest_first() -> None:
    docs = ["common word"] * 8 + ["rare common", "scarce", "scarce rare"]
    conn = _table(docs)
    # rare: 2 documents, scarce: 2, common: 9; a budget of 5 keeps the two rare words.
    plan = plan_keyword_query(conn, "f", ["common", "scarce", "rare"], budget=5)
    assert plan == KeywordPlan('"scarce" OR "rare"', newest_only=False)
    # Stemmed forms count as the same word, as FTS5 matches them.
    plan = plan_keyword_query(conn, "f", ["words", "scarce"], budget=5)
    assert plan == KeywordPlan('"scarce"', newest_only=False)


def test_only_the_newest_matches_are_ranked_when_every_word_is_common() -> None:
    conn = _table(["common alpha"] * 6 + ["common"] * 6)
    plan = plan_keyword_query(conn, "f", ["alpha", "common"], budget=4)
    assert plan == KeywordPlan('"alpha" OR "common"', newest_only=True)


def _episode(i: int, text: str) -> Episode:
    return make_episode("s", text, timestamp=T0 + timedelta(minutes=i))


async def test_store_ranks_rare_words_and_bounds_common_ones(tmp_path: Path) -> None:
    store = SQLiteRecordStore(tmp_path / "ww.sqlite3", match_budget=5)
    await store.open()
    try:
        await store.ensure_session("s", T0)
        eps = [_episode(i, f"routine standup note {i}") for i in range(12)]
        needle = _episode(12, "routine standup note about the zanzibar outage")
        await store.insert_episodes("s", [*eps, needle])
        flt = EpisodeFilter()

        # "routine" is in all 13 documents, over the budget: the rare word decides.
        hits = await store.keyword_search("s", "routine zanzibar", flt, 10)
        assert [h.id for h in hits] == [needle.id]

        # Only common words: the newest five matches are ranked, nothing older.
        hits = await store.keyword_search("s", "routine standup", flt, 10)
        newest = {needle.id, *(e.id for e in eps[-4:])}
        assert {h.id for h in hits} == newest
        assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)

        # A large budget ranks every match, as before the cap.
        store.match_budget = 1000
        hits = await store.keyword_search("s", "routine standup", flt, 20)
        assert len(hits) == 13
    finally:
        await store.close()


def test_the_budget_comes_from_the_settings(tmp_path: Path) -> None:
    settings = Settings(_env_file=None, data_dir=tmp_path, keyword_match_budget=321)  # type: ignore[call-arg]
    store = build_record_store(settings)
    assert isinstance(store, SQLiteRecordStore)
    assert store.match_budget == 321
