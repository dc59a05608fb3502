"""The SDK against a server and embedded: what is stored comes back, in both modes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import UUID

import pytest

from tests.sdk.conftest import SESSION
from ww.models import Episode, EpisodeCreate, Outcome
from ww.sdk import NotFoundError, ValidationError, WorldWeaver


def test_store_then_recall_brings_the_memory_back(ww: WorldWeaver) -> None:
    stored = ww.episodes.create(content="The deploy failed because the disk was full")
    ww.episodes.create(content="Lunch was a sandwich")
    result = ww.episodes.recall("why did the deploy fail?", limit=1)
    assert isinstance(stored, Episode)
    assert [hit.episode.id for hit in result.hits] == [stored.id]
    assert result.hits[0].episode.content == stored.content


def test_recall_at_a_time_with_a_relevance_floor(ww: WorldWeaver) -> None:
    asked = datetime(2024, 3, 20, 18, 0, tzinfo=UTC)
    for days in (7, 40):
        ww.episodes.create(
            content="I repotted the fig tree on the balcony",
            timestamp=asked - timedelta(days=days),
            external_id=f"fig-{days}",
        )
    result = ww.episodes.recall("when did I repot the fig tree last week?", at=asked)
    assert result.hits[0].external_id == "fig-7"
    assert result.hits[0].score_parts.time == 1.0
    assert 0.5 < result.hits[0].relevance <= 1.0
    floor = ww.episodes.recall("what is my cousin's phone number?", min_relevance=0.5)
    assert floor.hits == []


def test_get_update_delete(ww: WorldWeaver) -> None:
    stored = ww.episodes.create(EpisodeCreate(content="first draft", speaker="user"))
    assert ww.episodes.get(stored.id) == stored
    changed = ww.episodes.update(stored.id, content="second draft", outcome=Outcome.SUCCESS)
    assert (changed.content, changed.outcome, changed.speaker) == (
        "second draft",
        Outcome.SUCCESS,
        "user",
    )
    assert ww.episodes.delete(stored.id) is None
    with pytest.raises(NotFoundError) as caught:
        ww.episodes.get(stored.id)
    err = caught.value
    assert (err.status_code, err.code, err.message) == (404, "not_found", "episode not found")
    assert err.request_id  # the id the server logged, to quote to its operator


def test_mark_important(ww: WorldWeaver) -> None:
    stored = ww.episodes.create(content="the launch code is in the blue folder")
    assert ww.episodes.mark_important(stored.id, importance=0.9).importance == 0.9


def test_a_bad_body_is_a_validation_error_naming_the_field(ww: WorldWeaver) -> None:
    with pytest.raises(ValidationError) as caught:
        ww.episodes.create(content="")
    assert caught.value.status_code == 422
    assert caught.value.code == "validation_error"
    assert caught.value.message.startswith("content:")


def test_the_page_helper_walks_every_page(ww: WorldWeaver) -> None:
    batch = ww.episodes.create_batch([{"content": f"note {i}"} for i in range(5)])
    assert batch.count == 5
    first = ww.episodes.list(limit=2)
    assert len(first.items) == 2 and first.next_cursor is not None
    walked = list(ww.episodes.list_all(limit=2))
    assert sorted(e.id for e in walked) == sorted(e.id for e in batch.episodes)
    assert [e.id for e in walked[:2]] == [e.id for e in first.items]


def test_list_filters_travel_as_query_parameters(ww: WorldWeaver) -> None:
    ww.episodes.create(content="tagged", metadata={"k": "v"}, speaker="ann")
    ww.episodes.create(content="plain", speaker="bob")
    assert [e.content for e in ww.episodes.list_all(metadata={"k": "v"})] == ["tagged"]
    assert [e.content for e in ww.episodes.list_all(speaker="bob")] == ["plain"]


def test_a_create_retried_with_its_idempotency_key_is_done_once(ww: WorldWeaver) -> None:
    one = ww.episodes.create(content="only once", idempotency_key="key-1")
    again = ww.episodes.create(content="only once", idempotency_key="key-1")
    assert again.id == one.id
    assert [e.id for e in ww.episodes.list_all()] == [one.id]


def test_entities_and_relations(ww: WorldWeaver) -> None:
    paris = ww.entities.create(name="Paris", entity_type="LOCATION", summary="capital of France")
    france = ww.entities.create(name="France", entity_type="LOCATION", summary="a country")
    relation = ww.entities.relate(paris.id, france.id, relation_type="PART_OF", weight=0.9)
    assert [r.id for r in ww.entities.relations(paris.id).items] == [relation.id]
    hits = ww.entities.recall("French capital city", limit=1).hits
    assert [h.entity.id for h in hits] == [paris.id]
    newer = ww.entities.supersede(paris.id, summary="capital and largest city of France")
    history = ww.entities.history(newer.id)
    assert [v.summary for v in history.versions] == [
        "capital of France",
        "capital and largest city of France",
    ]
    assert ww.entities.spread(newer.id).seed_id == newer.id
    assert ww.entities.relations(newer.id).items  # the relation moved to the new version
    moved = ww.entities.relations(newer.id).items[0]
    ww.entities.unrelate(newer.id, moved.id)
    assert ww.entities.relations(newer.id).items == []
    assert {e.name for e in ww.entities.list_all(limit=1)} == {"Paris", "France"}
    ww.entities.delete(france.id)
    with pytest.raises(NotFoundError):
        ww.entities.get(france.id)


def test_skills_and_how_to(ww: WorldWeaver) -> None:
    skill = ww.skills.create(
        name="restart-service",
        domain="ops",
        task="restart a crashed web service",
        steps=[{"order": 1, "action": "systemctl restart web"}],
    )
    advice = ww.skills.how_to("the web service crashed, how do I bring it back?")
    assert advice.skill is not None and advice.skill.id == skill.id
    result = ww.skills.execute(skill.id, success=True, duration_ms=120)
    assert result.skill.id == skill.id
    assert len(ww.skills.executions(skill.id).items) == 1
    assert ww.skills.recall("restart the service", limit=1).hits[0].skill.id == skill.id
    assert ww.skills.deprecate(skill.id).deprecated is True
    assert list(ww.skills.list_all()) == []
    assert [s.id for s in ww.skills.list_all(include_deprecated=True)] == [skill.id]


def test_unified_recall_then_feedback(ww: WorldWeaver) -> None:
    stored = ww.episodes.create(content="the cache server runs on port 6379")
    result = ww.recall("which port does the cache use?")
    assert stored.id in {hit.id for hit in result.hits}
    assert result.recall_id is not None
    answer = ww.feedback(result.recall_id, reward=1.0)
    assert answer.recall_id == result.recall_id
    assert stored.id in {change.memory_id for change in answer.changes}


def test_unified_recall_has_relevance_and_a_floor(ww: WorldWeaver) -> None:
    stored = ww.episodes.create(content="the cache server runs on port 6379")
    hit = ww.recall("which port does the cache server run on?", learn=False).hits[0]
    assert hit.id == stored.id
    assert 0.5 < hit.relevance <= 1.0
    floor = ww.recall("what is my pet tortoise called?", learn=False, min_relevance=0.5)
    assert floor.hits == []


def test_consolidate_and_links(ww: WorldWeaver) -> None:
    stored = ww.episodes.create(content="a lone memory")
    report = ww.consolidate(dry_run=True)
    assert report.dry_run is True
    assert ww.links(stored.id).links == []


def test_health(ww: WorldWeaver) -> None:
    report = ww.health()
    assert report.status == "ok"
    assert set(report.components.values()) == {"ok"}


def test_a_session_scope_sees_only_its_session(ww: WorldWeaver) -> None:
    with ww.session("team-a") as a:
        mine = a.episodes.create(content="team a's plan")
        assert a.session_id == "team-a"
    with ww.session("team-b") as b:
        assert list(b.episodes.list_all()) == []
        with pytest.raises(NotFoundError):
            b.episodes.get(mine.id)
    assert ww.session_id == SESSION  # the scope changed nothing on the client it came from
    assert list(ww.episodes.list_all()) == []
    assert ww.sessions.stats("team-a").episodes == 1
    assert "team-a" in {s.session_id for s in ww.sessions.list_all(limit=1)}
    gone = ww.sessions.delete("team-a")
    assert gone.deleted_episodes == 1
    with pytest.raises(NotFoundError):
        ww.sessions.stats("team-a")


def test_export_then_import_restores_a_session(ww: WorldWeaver) -> None:
    with ww.session("moving") as s:
        kept = s.episodes.create(content="keep me through the move")
    data = ww.admin.export(session_id="moving")
    assert data.startswith(b"{")
    ww.sessions.delete("moving")
    report = ww.admin.import_(data)
    assert report.counts.get("episode") == 1
    with ww.session("moving") as s:
        assert s.episodes.get(kept.id).content == kept.content


def test_ids_may_be_given_as_strings(ww: WorldWeaver) -> None:
    stored = ww.episodes.create(content="string ids")
    assert ww.episodes.get(str(stored.id)).id == UUID(str(stored.id))
