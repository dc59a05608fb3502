"""Consolidation over the real embedded stores and the real ONNX model (no mocks)."""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from uuid import UUID, uuid4

import numpy as np
import pytest

from tests.conftest import ManualClock
from tests.engine.topics import TOPICS
from ww.config import Settings
from ww.control.flags import Flags
from ww.embedding import EmbeddingService, OnnxEmbedder
from ww.engine import (
    MemoryEngine,
    SemanticMemory,
    build_consolidator,
    build_engine,
    build_semantic,
)
from ww.engine.consolidation import Consolidator
from ww.models import Episode, EpisodeCreate, EpisodeFilter, EpisodeUpdate
from ww.models.consolidation import ConsolidationOptions, ConsolidationReport
from ww.models.semantic import EntityCreate, EntityFilter, EntityRecallRequest, RelationCreate
from ww.storage.ports.consolidation import LinkType
from ww.storage.ports.learning import HebbianEdge

OPTS = ConsolidationOptions(min_cluster_size=3)


@dataclass
class Sleep:
    engine: MemoryEngine
    semantic: SemanticMemory
    consolidator: Consolidator
    clock: ManualClock


@pytest.fixture
async def sleep(
    settings: Settings, onnx_embedder: OnnxEmbedder, clock: ManualClock
) -> AsyncIterator[Sleep]:
    service = EmbeddingService(onnx_embedder, cache_size=256, batch_size=16)
    engine = build_engine(settings, clock=clock, embedder=service)
    semantic = build_semantic(settings, engine)
    consolidator = build_consolidator(engine, semantic)
    await engine.open()
    await semantic.open()
    yield Sleep(engine, semantic, consolidator, clock)
    await semantic.close()
    await engine.close()


async def seed(s: Sleep, session: str = "s1") -> dict[str, list[Episode]]:
    """The three topics, one episode a minute, interleaved so time does not cluster them."""
    out: dict[str, list[Episode]] = {k: [] for k in TOPICS}
    for i in range(6):
        for topic, texts in TOPICS.items():
            s.clock.advance(minutes=1)
            (ep,) = await s.engine.create_episodes(session, [EpisodeCreate(content=texts[i])])
            out[topic].append(ep)
    return out


async def entities(s: Sleep, session: str = "s1") -> list[UUID]:
    page = await s.semantic.list_page(session, EntityFilter(include_closed=True), 200, None)
    return sorted(e.id for e in page.items)


async def live_ids(s: Sleep, session: str = "s1", archived: bool = False) -> set[UUID]:
    flt = EpisodeFilter(include_archived=archived)
    page = await s.engine.list_episodes(session, flt, 200, None)
    return {e.id for e in page.items}


async def test_three_topics_become_three_linked_entities(sleep: Sleep) -> None:
    topics = await seed(sleep)
    report = await sleep.consolidator.consolidate("s1", OPTS)
    assert report.clusters == 3 and report.entities_created == 3 and report.changed
    assert report.episodes_considered == 18 and report.capsule_encoding
    by_members = {frozenset(e.members): e for e in report.entities}
    keyword = {"baking": "sourdough", "astronomy": "telescope", "kubernetes": "kubernetes"}
    for topic, eps in topics.items():
        made = by_members[frozenset(ep.id for ep in eps)]
        assert made.action == "created"
        assert 0.5 < made.confidence <= 1.0
        entity = await sleep.semantic.get("s1", made.entity_id)
        assert entity is not None
        assert entity.entity_type == "CONCEPT" and entity.source == "consolidation"
        assert keyword[topic] in entity.name.split(), entity.name
        assert entity.summary in TOPICS[topic]  # the medoid episode's text
        for ep in eps:
            links = await sleep.consolidator.links("s1", ep.id)
            assert [(k.target_id, k.link_type) for k in links] == [
                (made.entity_id, LinkType.CONSOLIDATED_INTO)
            ]
    # The routed vector is in the entity index: recall finds the topic's entity first.
    hits = await sleep.semantic.recall(
        "s1", EntityRecallRequest(query="baking a loaf of bread", learn=False)
    )
    baking = by_members[frozenset(ep.id for ep in topics["baking"])].entity_id
    assert hits.hits[0].id == baking


async def test_second_run_changes_nothing(sleep: Sleep) -> None:
    await seed(sleep)
    first = await sleep.consolidator.consolidate("s1", OPTS)
    made = await entities(sleep)
    second = await sleep.consolidator.consolidate("s1", OPTS)
    assert second.entities_created == second.entities_updated == 0
    assert second.entities_unchanged == 3 and not second.changed
    assert await entities(sleep) == made
    assert {e.entity_id for e in second.entities} == {e.entity_id for e in first.entities}


async def test_a_grown_cluster_updates_its_entity(sleep: Sleep) -> None:
    await seed(sleep)
    first = await sleep.consolidator.consolidate("s1", OPTS)
    made = await entities(sleep)
    sleep.clock.advance(minutes=5)
    text = "The kubernetes scheduler could not place the pod on any cluster node"
    (new,) = await sleep.engine.create_episodes("s1", [EpisodeCreate(content=text)])
    second = await sleep.consolidator.consolidate("s1", OPTS)
    assert (second.entities_created, second.entities_updated) == (0, 1)
    assert await entities(sleep) == made
    (grown,) = [e for e in second.entities if e.action == "updated"]
    assert new.id in grown.members
    assert grown.entity_id in {e.entity_id for e in first.entities}
    assert [k.target_id for k in await sleep.consolidator.links("s1", new.id)] == [grown.entity_id]


async def test_near_duplicate_is_archived_and_linked_not_deleted(sleep: Sleep) -> None:
    topics = await seed(sleep)
    original = topics["kubernetes"][0]
    sleep.clock.advance(hours=1)
    (dup, other_speaker) = await sleep.engine.create_episodes(
        "s1",
        [
            EpisodeCreate(content=original.content),
            EpisodeCreate(content=original.content, speaker="Ana"),
        ],
    )
    report = await sleep.consolidator.consolidate("s1", OPTS)
    assert [(m.duplicate_id, m.original_id) for m in report.duplicates_merged] == [
        (dup.id, original.id)
    ]
    stored = await sleep.engine.get_episode("s1", dup.id)
    assert stored is not None and stored.archived
    assert dup.id not in await live_ids(sleep)
    assert other_speaker.id in await live_ids(sleep)  # same text, another speaker: kept
    links = await sleep.consolidator.links("s1", dup.id)
    assert [(k.target_id, k.link_type) for k in links] == [(original.id, LinkType.DUPLICATE_OF)]
    again = await sleep.consolidator.consolidate("s1", OPTS)
    assert again.duplicates_merged == []


async def test_forgotten_and_unimportant_episodes_are_archived(sleep: Sleep) -> None:
    (trivial, kept, fresh_trivial) = await sleep.engine.create_episodes(
        "s2",
        [
            EpisodeCreate(content="the coffee machine beeped", importance=0.1),
            EpisodeCreate(content="the contract was signed", importance=0.9),
            EpisodeCreate(content="placeholder", importance=0.1),
        ],
    )
    sleep.clock.advance(days=120)  # R ≈ 0.47 for a never-recalled memory
    # Reviewed just now: retrievability 1, so it stays although it is unimportant.
    await sleep.engine.mark_important("s2", fresh_trivial.id, 0.1)
    before = await sleep.consolidator.consolidate("s2", OPTS.model_copy(update={"dry_run": True}))
    assert before.archived == [trivial.id]
    assert trivial.id in await live_ids(sleep, "s2")
    report = await sleep.consolidator.consolidate("s2", OPTS)
    assert report.archived == [trivial.id]
    assert await live_ids(sleep, "s2") == {kept.id, fresh_trivial.id}
    assert trivial.id in await live_ids(sleep, "s2", archived=True)  # archived, not deleted
    restored = await sleep.engine.update_episode("s2", trivial.id, EpisodeUpdate(archived=False))
    assert restored is not None and not restored.archived
    assert trivial.id in await live_ids(sleep, "s2")


async def test_dry_run_changes_nothing(sleep: Sleep) -> None:
    topics = await seed(sleep)
    sleep.clock.advance(hours=1)
    await sleep.engine.create_episodes("s1", [EpisodeCreate(content=TOPICS["baking"][0])])
    before = await live_ids(sleep)
    report = await sleep.consolidator.consolidate("s1", OPTS.model_copy(update={"dry_run": True}))
    assert report.dry_run and report.changed
    assert report.entities_created == 3 and len(report.duplicates_merged) == 1
    assert await entities(sleep) == []
    assert await live_ids(sleep) == before
    assert await sleep.consolidator.links("s1", topics["baking"][0].id) == []
    real = await sleep.consolidator.consolidate("s1", OPTS)
    assert {e.entity_id for e in real.entities} == {e.entity_id for e in report.entities}


async def test_consolidation_while_writing_loses_nothing(sleep: Sleep) -> None:
    await seed(sleep)
    texts = [f"note {i} about the garden and the tomatoes" for i in range(20)]

    async def writer() -> list[UUID]:
        ids = []
        for i, t in enumerate(texts):
            # The notes are near-duplicates of each other; a speaker each keeps the merge rule
            # (same speaker) from depending on how far the writer got when the run read.
            new = EpisodeCreate(content=t, speaker=f"writer-{i}")
            ids += [e.id for e in await sleep.engine.create_episodes("s1", [new])]
            await asyncio.sleep(0)
        return ids

    written, report = await asyncio.gather(writer(), sleep.consolidator.consolidate("s1", OPTS))
    assert report.clusters >= 3
    everything = await live_ids(sleep, archived=True)
    assert set(written) <= everything and len(everything) == 38
    assert not report.archived and not report.duplicates_merged


async def test_one_sessions_consolidation_never_touches_another(sleep: Sleep) -> None:
    await seed(sleep, "s1")
    theirs = await seed(sleep, "s2")
    dup_text = TOPICS["baking"][0]
    await sleep.engine.create_episodes("s2", [EpisodeCreate(content=dup_text)])
    other = await sleep.semantic.create("s2", EntityCreate(name="Oven"))
    other2 = await sleep.semantic.create("s2", EntityCreate(name="Flour"))
    rel = await sleep.semantic.relate("s2", other.id, RelationCreate(target_id=other2.id))
    assert rel is not None
    s2_before = (await live_ids(sleep, "s2"), await entities(sleep, "s2"))
    sleep.clock.advance(days=400)
    report = await sleep.consolidator.consolidate("s1", OPTS)
    assert report.entities_created == 3
    s2_ids = {e.id for eps in theirs.values() for e in eps}
    assert not s2_ids & {m for e in report.entities for m in e.members}
    assert (await live_ids(sleep, "s2"), await entities(sleep, "s2")) == s2_before
    (kept,) = [r for r in await sleep.semantic.relations("s2", other.id) or [] if r.id == rel.id]
    assert kept.weight == rel.weight and kept.valid_to is None
    for ep in theirs["baking"]:
        assert await sleep.consolidator.links("s2", ep.id) == []


async def test_hebbian_decay_and_pruning_of_relations(sleep: Sleep) -> None:
    a = await sleep.semantic.create("s3", EntityCreate(name="Postgres"))
    b = await sleep.semantic.create("s3", EntityCreate(name="Billing"))
    rel = await sleep.semantic.relate("s3", a.id, RelationCreate(target_id=b.id, weight=0.5))
    assert rel is not None
    opts = ConsolidationOptions(cluster=False, decay_tau_days=30.0, prune_below=0.05)
    sleep.clock.advance(days=30)
    report = await sleep.consolidator.consolidate("s3", opts)
    assert (report.edges_decayed, report.edges_pruned) == (1, 0)
    (decayed,) = await sleep.semantic.relations("s3", a.id) or []
    assert decayed.weight == pytest.approx(0.5 * math.exp(-1))
    again = await sleep.consolidator.consolidate("s3", opts)  # same clock: nothing to decay
    assert (again.edges_decayed, again.edges_pruned, again.changed) == (0, 0, False)
    sleep.clock.advance(days=60)  # 0.184 · e^-2 ≈ 0.025 < 0.05: pruned (closed, kept)
    pruned = await sleep.consolidator.consolidate("s3", opts)
    assert (pruned.edges_decayed, pruned.edges_pruned) == (0, 1)
    (closed,) = await sleep.semantic.relations("s3", a.id) or []
    assert closed.valid_to == sleep.clock.now
    assert await sleep.semantic.store.adjacency("s3", [a.id]) == {a.id: []}


async def test_capsule_flag_off_uses_the_mean(sleep: Sleep) -> None:
    topics = await seed(sleep)
    plain = Consolidator(
        sleep.engine,
        sleep.semantic,
        sleep.consolidator.store,
        flags=lambda: Flags(capsule_encoding=False),
    )
    report = await plain.consolidate("s1", OPTS.model_copy(update={"dry_run": True}))
    routed = await sleep.consolidator.consolidate("s1", OPTS)
    assert not report.capsule_encoding and routed.capsule_encoding
    mean_conf = {frozenset(e.members): e.confidence for e in report.entities}
    for e in routed.entities:
        # Routing leans toward the agreeing members, so it agrees at least as well.
        assert e.confidence >= mean_conf[frozenset(e.members)] - 1e-9
    baking = [e for e in routed.entities if set(e.members) == {x.id for x in topics["baking"]}]
    stored = await sleep.semantic.vectors.get_vectors("s1", [baking[0].entity_id])
    assert float(np.linalg.norm(stored[baking[0].entity_id])) == pytest.approx(1.0, abs=1e-3)


async def test_session_delete_removes_links(sleep: Sleep) -> None:
    topics = await seed(sleep)
    await sleep.consolidator.consolidate("s1", OPTS)
    assert await sleep.engine.delete_session("s1") == 18
    assert await sleep.consolidator.links("s1", topics["baking"][0].id) == []
    assert await sleep.consolidator.store.consolidated("s1") == []


async def test_same_state_and_clock_give_the_same_consolidation(sleep: Sleep) -> None:
    await seed(sleep, "s1")
    await seed(sleep, "s2")
    one = await sleep.consolidator.consolidate("s1", OPTS)
    two = await sleep.consolidator.consolidate("s2", OPTS)

    def shape(report: ConsolidationReport) -> list[tuple[str, int, float]]:
        return sorted((e.name, len(e.members), round(e.confidence, 9)) for e in report.entities)

    assert shape(one) == shape(two)


async def test_a_derived_id_still_held_is_skipped(sleep: Sleep) -> None:
    taken = await sleep.semantic.create("s1", EntityCreate(name="placeholder"))
    first = await sleep.consolidator._new_id("s1", "abc")
    assert first != taken.id
    # Make the first derived id taken, as an earlier entity (since updated) would hold it.
    held = taken.model_copy(update={"id": first, "lineage_id": first})
    await sleep.semantic.store.insert_entity("s1", held)
    second = await sleep.consolidator._new_id("s1", "abc")
    assert second not in (first, taken.id)
    assert second == await sleep.consolidator._new_id("s1", "abc")  # deterministic


async def test_faded_co_retrieval_edges_are_pruned_live_ones_kept(sleep: Sleep) -> None:
    a, b, c = sorted((uuid4(), uuid4(), uuid4()), key=str)
    now = sleep.clock()
    tau = sleep.engine.recall_learning.params.hebbian_decay_tau_days
    await sleep.engine.learning.upsert_edges(
        "s1",
        [
            HebbianEdge(a, b, 0.9, now),  # fresh: 0.9
            # 0.5·e^-3 ≈ 0.025 after three time constants: under the default 0.05
            HebbianEdge(a, c, 0.5, now - timedelta(days=3 * tau)),
        ],
    )
    await sleep.engine.learning.upsert_edges(
        "s2", [HebbianEdge(a, c, 0.5, now - timedelta(days=3 * tau))]
    )
    dry = await sleep.consolidator.consolidate("s1", OPTS.model_copy(update={"dry_run": True}))
    assert dry.episode_edges_pruned == 1 and dry.changed
    assert len(await sleep.engine.learning.session_edges("s1")) == 2
    report = await sleep.consolidator.consolidate("s1", OPTS)
    assert (report.episode_edges_decayed, report.episode_edges_pruned) == (0, 1)
    assert [(e.a, e.b) for e in await sleep.engine.learning.session_edges("s1")] == [(a, b)]
    assert len(await sleep.engine.learning.session_edges("s2")) == 1  # not this session's
    again = await sleep.consolidator.consolidate("s1", OPTS)
    assert again.episode_edges_pruned == 0 and not again.changed


async def test_an_entity_whose_parts_cannot_be_embedded_is_left_pending(sleep: Sleep) -> None:
    """A long summary has parts to embed; with the model gone the entity is committed
    pending for the reconciler and the pass still makes every entity."""
    for i in range(6):
        for texts in TOPICS.values():
            sleep.clock.advance(minutes=1)
            long = " ".join([texts[i]] * 30)  # past what the model sees whole: it has windows
            await sleep.engine.create_episodes("s1", [EpisodeCreate(content=long)])
    await sleep.engine.embedder.aclose()  # every embedding fails from here on
    report = await sleep.consolidator.consolidate("s1", OPTS)
    assert report.entities_created == 3
    for made in report.entities:
        entity = await sleep.semantic.get("s1", made.entity_id)
        assert entity is not None
        assert entity.index_state == "pending"
