"""Contract of the RecordStore port."""

from __future__ import annotations

from datetime import timedelta
from uuid import uuid4

import pytest

from tests.contract.test_entity_store import entity
from tests.contract.test_skill_store import skill
from tests.factories import T0, at, make_episode
from ww.engine.dynamics import Fsrs, ReviewRating
from ww.models import EpisodeContext, EpisodeFilter, IndexState, MemoryType, Outcome
from ww.storage import AccessUpdate, InvalidCursorError, RecordStore
from ww.storage.factory import entity_store, skill_store
from ww.storage.payload import to_micros
from ww.storage.ports import IdConflictError, MemoryCount


async def test_meta_roundtrip(records: RecordStore) -> None:
    assert await records.get_meta("k") is None
    await records.set_meta("k", "v1")
    await records.set_meta("k", "v2")
    assert await records.get_meta("k") == "v2"


async def test_insert_get_roundtrip_keeps_every_field(records: RecordStore) -> None:
    ep = make_episode(
        content="Deployed the billing service",
        timestamp=at(5).replace(microsecond=123457),
        speaker="alice",
        source="chat",
        context=EpisodeContext(project="billing", git_branch="main", extra={"n": 1}),
        metadata={"ticket": "B-1", "n": 3, "ok": True, "nested": {"a": [1, 2]}},
        external_id="D1:3",
        outcome=Outcome.SUCCESS,
        importance=0.8,
    )
    await records.ensure_session("s1", T0)
    await records.insert_episodes("s1", [ep])
    got = await records.get_episode("s1", ep.id)
    assert got == ep


async def test_other_session_sees_nothing(records: RecordStore) -> None:
    ep = make_episode("s1")
    await records.insert_episodes("s1", [ep])
    assert await records.get_episode("s2", ep.id) is None
    assert await records.get_episodes("s2", [ep.id]) == {}
    assert await records.existing_ids("s2", [ep.id]) == set()
    assert not await records.delete_episode("s2", ep.id)
    assert not await records.update_episode("s2", ep.model_copy(update={"session_id": "s2"}))
    assert await records.keyword_search("s2", "hello", EpisodeFilter(), 10) == []
    assert (await records.list_episodes("s2", EpisodeFilter(), 10, None)).items == []
    assert await records.get_episode("s1", ep.id) == ep


async def test_insert_refuses_foreign_session(records: RecordStore) -> None:
    with pytest.raises(ValueError):
        await records.insert_episodes("s1", [make_episode("s2")])


async def test_update_and_delete(records: RecordStore) -> None:
    ep = make_episode("s1", content="old words")
    await records.insert_episodes("s1", [ep])
    changed = ep.model_copy(update={"content": "brand new words", "importance": 0.9})
    assert await records.update_episode("s1", changed)
    assert await records.get_episode("s1", ep.id) == changed
    # the keyword index follows the content
    assert await records.keyword_search("s1", "old", EpisodeFilter(), 10) == []
    assert [s.id for s in await records.keyword_search("s1", "brand", EpisodeFilter(), 10)] == [
        ep.id
    ]
    assert await records.delete_episode("s1", ep.id)
    assert await records.get_episode("s1", ep.id) is None
    assert await records.keyword_search("s1", "brand", EpisodeFilter(), 10) == []
    assert not await records.delete_episode("s1", ep.id)


async def test_pending_then_indexed(records: RecordStore) -> None:
    eps = [make_episode("s1", content=f"e{i}") for i in range(3)]
    await records.insert_episodes("s1", eps)
    assert {e.id for e in await records.pending_episodes("s1", 10)} == {e.id for e in eps}
    await records.mark_indexed("s1", [eps[0].id])
    assert {e.id for e in await records.pending_episodes("s1", 10)} == {eps[1].id, eps[2].id}
    assert (await records.get_episode("s1", eps[0].id)).index_state == IndexState.INDEXED  # type: ignore[union-attr]
    assert len(await records.pending_episodes("s1", 1)) == 1


async def test_indexed_count_counts_what_indexed_ids_lists(records: RecordStore) -> None:
    eps = [make_episode("s1", content=f"e{i}") for i in range(4)]
    await records.insert_episodes("s1", eps)
    await records.insert_episodes("s2", [make_episode("s2", content="other")])
    assert await records.indexed_count("s1") == 0
    await records.mark_indexed("s1", [e.id for e in eps])
    await records.mark_pending("s1", [eps[0].id])
    await records.delete_episode("s1", eps[1].id)
    assert await records.indexed_count("s1") == len(await records.indexed_ids("s1")) == 2
    assert await records.indexed_count("s2") == 0
    assert await records.indexed_count("nobody") == 0


async def test_list_newest_first_with_cursor(records: RecordStore) -> None:
    eps = [make_episode("s1", content=f"e{i}", timestamp=at(i % 4)) for i in range(9)]
    await records.insert_episodes("s1", eps)
    expected = sorted(eps, key=lambda e: (e.timestamp, str(e.id)), reverse=True)
    seen = []
    cursor = None
    while True:
        page = await records.list_episodes("s1", EpisodeFilter(), 4, cursor)
        seen += page.items
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert [e.id for e in seen] == [e.id for e in expected]
    with pytest.raises(InvalidCursorError):
        await records.list_episodes("s1", EpisodeFilter(), 4, "not-a-cursor")


async def test_filters(records: RecordStore) -> None:
    a = make_episode(
        "s1",
        content="alpha deploy",
        timestamp=at(10),
        speaker="alice",
        outcome=Outcome.SUCCESS,
        context=EpisodeContext(project="p1"),
        metadata={"kind": "x", "n": 1, "flag": True},
    )
    b = make_episode(
        "s1",
        content="beta deploy",
        timestamp=at(20),
        speaker="bob",
        outcome=Outcome.FAILURE,
        context=EpisodeContext(project="p2"),
        metadata={"kind": "y", "n": "1", "flag": 1},
    )
    c = make_episode("s1", content="gamma deploy", timestamp=at(30), archived=True)
    await records.insert_episodes("s1", [a, b, c])

    async def ids(**kw: object) -> set[object]:
        flt = EpisodeFilter(**kw)  # type: ignore[arg-type]
        listed = {e.id for e in (await records.list_episodes("s1", flt, 50, None)).items}
        found = {s.id for s in await records.keyword_search("s1", "deploy", flt, 50)}
        assert listed == found
        return listed

    assert await ids() == {a.id, b.id}
    assert await ids(include_archived=True) == {a.id, b.id, c.id}
    assert await ids(time_from=at(15)) == {b.id}
    assert await ids(time_to=at(20)) == {a.id}
    assert await ids(outcome=Outcome.FAILURE) == {b.id}
    assert await ids(project="p1") == {a.id}
    assert await ids(speaker="bob") == {b.id}
    assert await ids(metadata={"kind": "x"}) == {a.id}
    assert await ids(metadata={"n": 1}) == {a.id}
    assert await ids(metadata={"n": "1"}) == {b.id}
    assert await ids(metadata={"flag": True}) == {a.id}
    assert await ids(metadata={"missing": "x"}) == set()


async def test_keyword_search_ranks_and_ignores_syntax(records: RecordStore) -> None:
    eps = [
        make_episode("s1", content="the cat sat on the mat"),
        make_episode("s1", content="cats and dogs, cats everywhere"),
        make_episode("s1", content="an unrelated sentence"),
    ]
    await records.insert_episodes("s1", eps)
    hits = await records.keyword_search("s1", 'cat" OR NEAR(* -', EpisodeFilter(), 10)
    assert {h.id for h in hits} == {eps[0].id, eps[1].id}
    assert all(h.score > 0 for h in hits)
    assert hits == sorted(hits, key=lambda h: -h.score)
    assert await records.keyword_search("s1", "the of and", EpisodeFilter(), 10) == []


async def test_keyword_search_folds_accents_and_word_joins(records: RecordStore) -> None:
    cafe = make_episode("s1", content="Met at the Café Crème")
    snake = make_episode("s1", content="renamed parse_config_file")
    await records.insert_episodes("s1", [cafe, snake, make_episode("s1", content="unrelated")])

    async def found(query: str) -> set[object]:
        return {h.id for h in await records.keyword_search("s1", query, EpisodeFilter(), 10)}

    assert await found("cafe") == {cafe.id}
    assert await found("CAFÉ creme") == {cafe.id}
    assert await found("config") == {snake.id}
    assert await found("parse_config_file") == {snake.id}


async def test_memory_counts_add_up_every_session_by_type(records: RecordStore) -> None:
    """The metrics' gauges: every session's memories of each type, and the pending ones."""
    assert await records.memory_counts() == {kind: MemoryCount(0, 0) for kind in MemoryType}
    for session in ("s1", "s2"):
        await records.ensure_session(session, T0)
    first = [make_episode("s1", content=f"e{i}") for i in range(3)]
    await records.insert_episodes("s1", first)
    await records.insert_episodes("s2", [make_episode("s2", archived=True)])
    await records.mark_indexed("s1", [first[0].id])
    entities, skills = entity_store(records), skill_store(records)
    indexed = entity("s1", "Python")
    await entities.insert_entity("s1", indexed)
    await entities.insert_entity("s2", entity("s2", "Rust"))
    await entities.mark_indexed("s1", [indexed.id])
    await skills.insert_skill("s2", skill("s2"))
    assert await records.memory_counts() == {
        MemoryType.EPISODE: MemoryCount(stored=4, pending=3),
        MemoryType.ENTITY: MemoryCount(stored=2, pending=1),
        MemoryType.SKILL: MemoryCount(stored=1, pending=1),
    }
    # Indexed, a pending record leaves the backlog; deleted, it leaves the count.
    await records.mark_indexed("s1", [first[1].id])
    await records.delete_episode("s1", first[2].id)
    await skills.mark_indexed("s2", [s.id for s in (await skills.pending_skills("s2", 9))])
    counts = await records.memory_counts()
    assert counts[MemoryType.EPISODE] == MemoryCount(stored=3, pending=1)
    assert counts[MemoryType.SKILL] == MemoryCount(stored=1, pending=0)


async def test_sessions_and_stats(records: RecordStore) -> None:
    await records.ensure_session("s1", T0)
    await records.ensure_session("s2", T0)
    held = [make_episode("s1", content="café au lait"), make_episode("s1", archived=True)]
    await records.insert_episodes("s1", held)
    assert await records.list_sessions() == ["s1", "s2"]
    stats = await records.session_stats("s1")
    assert stats is not None
    assert (stats.episodes, stats.archived, stats.pending) == (2, 1, 2)
    # Characters, not bytes: "é" is one.
    assert stats.content_chars == sum(len(e.content) for e in held)
    (empty,) = await records.session_stats_page(1, "s1")
    assert (empty.session_id, empty.episodes, empty.content_chars) == ("s2", 0, 0)
    assert await records.session_stats("nope") is None
    assert await records.delete_session("s1") == 2
    assert await records.list_sessions() == ["s2"]
    assert (
        await records.list_episodes("s1", EpisodeFilter(include_archived=True), 9, None)
    ).items == []


async def test_record_access(records: RecordStore) -> None:
    ep = make_episode("s1")
    await records.insert_episodes("s1", [ep])
    fsrs = Fsrs()
    later = T0 + timedelta(days=2)
    new_state = fsrs.review(ep.fsrs, ReviewRating.GOOD, later)
    await records.record_access("s1", [AccessUpdate(ep.id, new_state, 4, later)])
    await records.record_access("s2", [AccessUpdate(ep.id, ep.fsrs, 99, later)])  # no effect
    got = await records.get_episode("s1", ep.id)
    assert got is not None
    assert got.fsrs == new_state
    assert (got.access_count, got.last_accessed) == (4, later)


async def test_existing_ids(records: RecordStore) -> None:
    ep = make_episode("s1")
    await records.insert_episodes("s1", [ep])
    assert await records.existing_ids("s1", [ep.id, uuid4()]) == {ep.id}


async def test_keyword_scores_ignore_other_sessions(records: RecordStore) -> None:
    mine = [make_episode("s1", content=f"rare word zebra in note {i}") for i in range(3)]
    mine.append(make_episode("s1", content="nothing about that animal"))
    await records.insert_episodes("s1", mine)
    before = await records.keyword_search("s1", "zebra note", EpisodeFilter(), 10)
    # Another session floods the corpus with the same words.
    await records.insert_episodes(
        "s2", [make_episode("s2", content=f"zebra zebra note {i}") for i in range(50)]
    )
    after = await records.keyword_search("s1", "zebra note", EpisodeFilter(), 10)
    assert after == before
    await records.delete_session("s2")
    assert await records.keyword_search("s1", "zebra note", EpisodeFilter(), 10) == before


async def test_candidate_rows_apply_session_and_filter(records: RecordStore) -> None:
    a = make_episode("s1", timestamp=at(3), speaker="ana", importance=0.7)
    b = make_episode("s1", archived=True)
    c = make_episode("s2")
    await records.insert_episodes("s1", [a, b])
    await records.insert_episodes("s2", [c])
    rows = await records.candidate_rows("s1", [a.id, b.id, c.id, uuid4()], EpisodeFilter())
    assert set(rows) == {a.id}
    row = rows[a.id]
    assert (row.timestamp_us, row.importance, row.speaker) == (to_micros(at(3)), 0.7, "ana")
    assert (row.stability, row.last_review_us) == (a.fsrs.stability, to_micros(a.fsrs.last_review))
    everything = EpisodeFilter(include_archived=True)
    assert set(await records.candidate_rows("s1", [a.id, b.id], everything)) == {a.id, b.id}


async def test_neighbours_follow_the_timeline(records: RecordStore) -> None:
    eps = [make_episode("s1", content=f"turn {i}", timestamp=at(i)) for i in range(5)]
    same_time = make_episode("s1", content="same minute as turn 2", timestamp=at(2))
    other = make_episode("s2", timestamp=at(1))
    await records.insert_episodes("s1", [*eps, same_time])
    await records.insert_episodes("s2", [other])
    timeline = sorted([*eps, same_time], key=lambda e: (e.timestamp, str(e.id)))
    rows = await records.candidate_rows("s1", [e.id for e in timeline], EpisodeFilter())
    near = await records.neighbours("s1", list(rows.values()))
    for i, ep in enumerate(timeline):
        expected = tuple(x.id for x in timeline[max(0, i - 1) : i + 2] if x.id != ep.id)
        assert near[ep.id] == expected
    assert other.id not in {n for ns in near.values() for n in ns}


async def test_pending_episodes_can_skip_recent_writes(records: RecordStore) -> None:
    old = make_episode("s1", ingested_at=at(0))
    new = make_episode("s1", ingested_at=at(10))
    await records.insert_episodes("s1", [old, new])
    assert {e.id for e in await records.pending_episodes("s1", 10, at(5))} == {old.id}
    assert {e.id for e in await records.pending_episodes("s1", 10, at(11))} == {old.id, new.id}


async def test_keyword_search_finds_rare_filter_matches_beyond_the_fast_path(
    records: RecordStore,
) -> None:
    # Many strong matches by one speaker, a few weak ones by another: the filtered page
    # must still hold every weak match. More strong ones than a search reads past its limit
    # on Neo4j (limit + 100), so the filter must run on the stream before that cut.
    loud = [make_episode("s1", content="deploy deploy deploy now", speaker="a") for _ in range(150)]
    quiet = [
        make_episode("s1", content=f"a long note that mentions deploy once ({i})", speaker="b")
        for i in range(3)
    ]
    await records.insert_episodes("s1", [*loud, *quiet])
    hits = await records.keyword_search("s1", "deploy", EpisodeFilter(speaker="b"), 5)
    assert {h.id for h in hits} == {q.id for q in quiet}
    assert len(await records.keyword_search("s1", "deploy", EpisodeFilter(), 5)) == 5


async def test_insert_with_an_id_taken_by_another_session_conflicts(records: RecordStore) -> None:
    ep = make_episode("s1", "first")
    await records.ensure_session("s1", T0)
    await records.ensure_session("s2", T0)
    await records.insert_episodes("s1", [ep])
    fresh = make_episode("s2", "fresh")
    clash = ep.model_copy(update={"session_id": "s2", "content": "impostor"})
    with pytest.raises(IdConflictError):
        await records.insert_episodes("s2", [fresh, clash])
    # All or nothing: the batch's other episode is not written either.
    assert await records.existing_ids("s2", [fresh.id, ep.id]) == set()
    assert await records.get_episode("s1", ep.id) == ep


async def test_warm_loads_ahead_and_changes_no_answer(records: RecordStore) -> None:
    eps = [make_episode("s1", f"note {i} about the harbour crane") for i in range(3)]
    await records.ensure_session("s1", T0)
    await records.insert_episodes("s1", eps)
    before = await records.keyword_search("s1", "harbour", EpisodeFilter(), 10)
    assert {s.id for s in before} == {e.id for e in eps}
    assert await records.warm() >= 0
    assert await records.keyword_search("s1", "harbour", EpisodeFilter(), 10) == before
