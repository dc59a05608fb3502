"""SemanticMemory and ProceduralMemory over the real embedded stores: write protocol,
degradation when the vector index is down, and the start-up reconciler."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from uuid import uuid4

import pytest

from tests.conftest import ManualClock
from tests.engine.faults import index_failing_within
from ww.config import Settings
from ww.embedding import EmbeddingService, OnnxEmbedder
from ww.engine import (
    MemoryEngine,
    ProceduralMemory,
    SemanticMemory,
    build_engine,
    build_procedural,
    build_semantic,
)
from ww.models import IndexState
from ww.models.procedural import SkillCreate, SkillRecallRequest
from ww.models.semantic import EntityCreate, EntityRecallRequest, RelationCreate
from ww.storage import QdrantEdgeIndex, VectorItem


@dataclass
class Memories:
    engine: MemoryEngine
    semantic: SemanticMemory
    procedural: ProceduralMemory


@pytest.fixture
async def mem(
    settings: Settings, onnx_embedder: OnnxEmbedder, clock: ManualClock
) -> AsyncIterator[Memories]:
    service = EmbeddingService(onnx_embedder, cache_size=64, batch_size=16)
    engine = build_engine(settings, clock=clock, embedder=service)
    semantic, procedural = build_semantic(settings, engine), build_procedural(settings, engine)
    await engine.open()
    await semantic.open()
    await procedural.open()
    yield Memories(engine, semantic, procedural)
    await procedural.close()
    await semantic.close()
    await engine.close()


async def test_entity_vector_outage_keeps_writes_pending_then_reconciles(
    mem: Memories, settings: Settings
) -> None:
    sem = mem.semantic
    kept = await sem.create("s1", EntityCreate(name="ZX-4471", summary="a humidity sensor"))
    assert kept.index_state is IndexState.INDEXED
    await sem.vectors.close()  # the index goes away for real
    pending = await sem.create("s1", EntityCreate(name="ZX-4471 recall", summary="sensor recall"))
    assert pending.index_state is IndexState.PENDING
    stored = await sem.get("s1", pending.id)
    assert stored is not None and stored.index_state is IndexState.PENDING

    degraded = await sem.recall("s1", EntityRecallRequest(query="ZX-4471", learn=False))
    assert degraded.degraded
    assert {h.id for h in degraded.hits} == {kept.id, pending.id}  # keyword path still works

    sem.vectors = QdrantEdgeIndex(settings.data_dir / "vectors-entities", 384)
    report = await sem.open()
    assert report.indexed == 1
    stored = await sem.get("s1", pending.id)
    assert stored is not None and stored.index_state is IndexState.INDEXED
    healed = await sem.recall("s1", EntityRecallRequest(query="sensor recall", learn=False))
    assert not healed.degraded and healed.hits[0].id == pending.id


async def test_skill_vector_outage_keeps_writes_pending_then_reconciles(
    mem: Memories, settings: Settings
) -> None:
    proc = mem.procedural
    await proc.vectors.close()
    skill = await proc.create(
        "s1", SkillCreate(name="calibrate", task="calibrate the ZX-4471", script="x")
    )
    assert skill.index_state is IndexState.PENDING
    degraded = await proc.recall("s1", SkillRecallRequest(query="calibrate ZX-4471", learn=False))
    assert degraded.degraded and [h.id for h in degraded.hits] == [skill.id]
    proc.vectors = QdrantEdgeIndex(settings.data_dir / "vectors-skills", 384)
    assert (await proc.open()).indexed == 1
    healed = await proc.recall("s1", SkillRecallRequest(query="calibrate the sensor", learn=False))
    assert not healed.degraded and healed.hits[0].id == skill.id


async def test_reconcile_reindexes_lost_vectors_and_removes_orphans(mem: Memories) -> None:
    sem = mem.semantic
    e = await sem.create("s1", EntityCreate(name="Harbor", summary="where ships dock"))
    # A vector whose record is gone, and a record whose vector is gone.
    orphan = await sem.create("s1", EntityCreate(name="Orphan"))
    vec = (await sem.vectors.get_vectors("s1", [orphan.id]))[orphan.id]
    await sem.store.delete_entity("s1", orphan.id)
    await sem.vectors.delete("s1", [e.id])
    report = await sem.reconcile()
    assert (report.indexed, report.orphans_removed) == (1, 1)
    assert await sem.vectors.ids("s1") == {e.id}
    await sem.vectors.upsert("s1", [VectorItem(orphan.id, vec, {"session_id": "s1"})])
    assert (await sem.reconcile()).orphans_removed == 1


async def test_engine_session_delete_removes_entities_and_skills(mem: Memories) -> None:
    e = await mem.semantic.create("s1", EntityCreate(name="Harbor"))
    s = await mem.procedural.create("s1", SkillCreate(name="dock", task="dock a ship", script="x"))
    keep = await mem.semantic.create("s2", EntityCreate(name="Harbor"))
    assert await mem.engine.delete_session("s1") == 0
    assert await mem.semantic.get("s1", e.id) is None
    assert await mem.procedural.get("s1", s.id) is None
    assert await mem.semantic.vectors.ids("s1") == set()
    assert await mem.procedural.vectors.ids("s1") == set()
    assert await mem.semantic.get("s2", keep.id) == keep


async def test_deleting_an_entity_or_skill_forgets_its_learned_state(mem: Memories) -> None:
    ent = await mem.semantic.create("s1", EntityCreate(name="ZX-4471", summary="a sensor"))
    skill = await mem.procedural.create(
        "s1", SkillCreate(name="calibrate", task="calibrate the ZX-4471 sensor", script="x")
    )
    ents = await mem.semantic.recall("s1", EntityRecallRequest(query="ZX-4471 sensor"))
    skills = await mem.procedural.recall("s1", SkillRecallRequest(query="calibrate sensor"))
    await mem.engine.feedback("s1", ents.recall_id, reward=1.0)
    await mem.engine.feedback("s1", skills.recall_id, reward=1.0)
    learned = await mem.engine.learning.memory_states("s1", [ent.id, skill.id])
    assert {i: s.value > 0.5 for i, s in learned.items()} == {ent.id: True, skill.id: True}
    assert await mem.semantic.delete("s1", ent.id)
    assert await mem.procedural.delete("s1", skill.id)
    assert await mem.engine.learning.memory_states("s1", [ent.id, skill.id]) == {}


@pytest.mark.parametrize("text_changes", [True, False])
async def test_an_update_during_an_outage_is_stored_pending_then_reindexed(
    mem: Memories, settings: Settings, clock: ManualClock, text_changes: bool
) -> None:
    """The one update path of episodes and entities: a new text is embedded and indexed
    again, an unchanged one only moves the payload; with the index down either way the
    change is kept and the record is left pending for the reconciler."""
    from ww.models import EpisodeCreate, EpisodeUpdate
    from ww.models.semantic import EntityUpdate

    engine, sem = mem.engine, mem.semantic
    (ep,) = await engine.create_episodes("s1", [EpisodeCreate(content="walked the dog")])
    ent = await sem.create("s1", EntityCreate(name="Rex", summary="a dog"))
    clock.advance(seconds=30)
    assert engine.seconds_since_last_write() == 30
    await engine.vectors.close()
    await sem.vectors.close()
    ep_patch = EpisodeUpdate(content="fed the cat") if text_changes else EpisodeUpdate(speaker="a")
    ent_patch = EntityUpdate(summary="a cat") if text_changes else EntityUpdate(source="notes")
    new_ep = await engine.update_episode("s1", ep.id, ep_patch)
    new_ent = await sem.update("s1", ent.id, ent_patch)
    assert new_ep is not None and new_ep.index_state is IndexState.PENDING
    assert new_ent is not None and new_ent.index_state is IndexState.PENDING
    assert engine.seconds_since_last_write() == 0  # an update postpones index optimisation
    assert await engine.get_episode("s1", ep.id) == new_ep
    assert await sem.get("s1", ent.id) == new_ent

    engine.vectors = QdrantEdgeIndex(settings.data_dir / "vectors", 384)
    await engine.vectors.open()
    sem.vectors = QdrantEdgeIndex(settings.data_dir / "vectors-entities", 384)
    assert (await engine.reconcile()).indexed == 1
    assert (await sem.open()).indexed == 1
    healed = await engine.get_episode("s1", ep.id)
    assert healed is not None and healed.index_state is IndexState.INDEXED
    assert await engine.update_episode("s1", uuid4(), ep_patch) is None
    assert await sem.update("s1", uuid4(), ent_patch) is None
    clock.advance(seconds=5)
    assert engine.seconds_since_last_write() == 5  # an unknown id is no write


async def test_entities_reached_by_spreading_that_the_index_cannot_score_degrade_recall(
    mem: Memories,
) -> None:
    # The index answering the dense search and then failing the search restricted to the
    # entities that spreading activation reached (tests.engine.faults).
    sem = mem.semantic
    seed = await sem.create("s1", EntityCreate(name="ZX-4471", summary="a humidity sensor"))
    reached = await sem.create("s1", EntityCreate(name="Greenhouse", summary="glass walls"))
    await sem.relate("s1", seed.id, RelationCreate(target_id=reached.id, weight=1.0))
    sem.candidates = 1  # the dense top 1 is the seed; the greenhouse only spreading reaches
    real = sem.vectors
    sem.vectors = index = index_failing_within(real)
    try:
        result = await sem.recall(
            "s1", EntityRecallRequest(query="ZX-4471 humidity sensor", limit=1, learn=False)
        )
    finally:
        sem.vectors = real

    assert [c.kwargs.get("within") for c in index.search.call_args_list] == [None, [reached.id]]
    assert result.degraded and [h.id for h in result.hits] == [seed.id]
