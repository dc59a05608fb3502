"""Export and import at the engine level: the fixed-point property over random stores, and
the write protocol when the vector index is down during an import."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.api.helpers import scratch_dir
from tests.conftest import ManualClock
from tests.factories import T0, unit
from ww.config import Settings
from ww.embedding import EmbeddingService, OnnxEmbedder
from ww.engine import build_engine, build_procedural, build_semantic
from ww.engine.activation import beta_success_rate
from ww.engine.dynamics import Fsrs
from ww.engine.transfer.jsonl import ImportReport, ReembedMode, Transfer
from ww.engine.transfer.kinds import Memories
from ww.models import Episode, EpisodeContext, FSRSState, IndexState, Outcome
from ww.models.procedural import Skill, SkillExecution, SkillStep, SkillVersion
from ww.models.semantic import Entity, EntityType, Relation, RelationType
from ww.storage import QdrantEdgeIndex, StoreUnavailableError, VectorItem
from ww.storage.memory_payload import entity_payload, skill_payload
from ww.storage.payload import episode_payload
from ww.storage.ports.learning import EncoderBlob, HebbianEdge

DIM = 384


@contextlib.asynccontextmanager
async def memories(
    data_dir: Path, embedder: OnnxEmbedder, clock: ManualClock
) -> AsyncIterator[Memories]:
    cfg = Settings(data_dir=data_dir, environment="test")  # type: ignore[arg-type]
    service = EmbeddingService(embedder, cache_size=256, batch_size=16)
    engine = build_engine(cfg, clock=clock, embedder=service)
    semantic, procedural = build_semantic(cfg, engine), build_procedural(cfg, engine)
    await engine.open()
    await semantic.open()
    await procedural.open()
    try:
        yield Memories(engine, semantic, procedural)
    finally:
        await procedural.close()
        await semantic.close()
        await engine.close()


async def export_bytes(mem: Memories, **kw: Any) -> bytes:
    return b"".join([chunk async for chunk in Transfer(mem).export(**kw)])


async def import_bytes(
    mem: Memories, body: bytes, mode: ReembedMode = ReembedMode.AUTO
) -> ImportReport:
    def lines() -> Iterable[bytes]:
        return body.splitlines(keepends=True)

    return await Transfer(mem).import_lines(lines, mode)


# -- random stores ---------------------------------------------------------------------------
# Text with the characters that trip line-based formats: newlines, U+2028, NEL, quotes.
TEXT = st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00")
    | st.sampled_from(["\n", "\u2028", "\u2029", "\x85", '"', "\\"]),
    min_size=1,
    max_size=30,
)
TIMES = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2090, 1, 1), timezones=st.just(UTC)
)
UNIT = st.floats(0.0, 1.0)
SCALAR = (
    st.none()
    | st.booleans()
    | st.integers(-(2**53), 2**53)
    | TEXT
    | st.floats(allow_nan=False, allow_infinity=False)
)
KEYS = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,10}", fullmatch=True)


@st.composite
def fsrs_states(draw: st.DrawFn) -> FSRSState:
    return FSRSState(
        stability=draw(st.floats(0.0, 1e4)),
        difficulty=draw(st.floats(1.0, 10.0)),
        last_review=draw(TIMES),
        reps=draw(st.integers(0, 1000)),
        lapses=draw(st.integers(0, 1000)),
    )


@st.composite
def episodes(draw: st.DrawFn, session: str) -> Episode:
    return Episode(
        id=uuid4(),
        session_id=session,
        content=draw(TEXT),
        timestamp=draw(TIMES),
        ingested_at=draw(TIMES),
        speaker=draw(st.none() | TEXT),
        source=draw(st.none() | TEXT),
        context=EpisodeContext(
            project=draw(st.none() | TEXT), extra=draw(st.dictionaries(KEYS, SCALAR, max_size=3))
        ),
        metadata=draw(st.dictionaries(KEYS, SCALAR, max_size=4)),
        external_id=draw(st.none() | TEXT),
        outcome=draw(st.sampled_from(Outcome)),
        importance=draw(UNIT),
        fsrs=draw(fsrs_states()),
        access_count=draw(st.integers(0, 10**6)),
        last_accessed=draw(st.none() | TIMES),
        value=draw(UNIT),
        archived=draw(st.booleans()),
        index_state=IndexState.INDEXED,
    )


@st.composite
def entities(draw: st.DrawFn, session: str) -> tuple[Entity, list[datetime]]:
    ident = uuid4()
    start = draw(TIMES)
    closed = draw(st.booleans())
    entity = Entity(
        id=ident,
        session_id=session,
        lineage_id=draw(st.just(ident) | st.builds(uuid4)),
        version=draw(st.integers(1, 9)),
        name=draw(TEXT),
        entity_type=draw(st.sampled_from(EntityType)),
        summary=draw(TEXT),
        details=draw(st.just("") | TEXT),
        source=draw(st.none() | TEXT),
        valid_from=start,
        valid_to=start + timedelta(days=draw(st.integers(1, 999))) if closed else None,
        created_at=draw(TIMES),
        fsrs=draw(fsrs_states()),
        access_count=draw(st.integers(0, 999)),
        last_accessed=draw(st.none() | TIMES),
        index_state=IndexState.INDEXED,
    )
    return entity, draw(st.lists(TIMES, max_size=4))


@st.composite
def skills(
    draw: st.DrawFn, session: str
) -> tuple[Skill, list[datetime], list[SkillVersion], list[SkillExecution]]:
    orders = draw(st.lists(st.integers(1, 20), unique=True, max_size=3))
    successes, failures = draw(st.integers(0, 50)), draw(st.integers(0, 50))
    version = draw(st.integers(1, 4))
    skill = Skill(
        id=uuid4(),
        session_id=session,
        name=draw(TEXT),
        domain=draw(TEXT),
        task=draw(TEXT),
        trigger_pattern=draw(st.none() | TEXT),
        steps=sorted(
            [
                SkillStep(
                    order=o,
                    action=draw(TEXT.filter(str.strip)),  # a step action is never blank
                    tool=draw(st.none() | TEXT),
                    parameters=draw(st.dictionaries(KEYS, SCALAR, max_size=2)),
                )
                for o in orders
            ],
            key=lambda s: s.order,
        ),
        script=draw(TEXT),
        script_generated=draw(st.booleans()),
        successes=successes,
        failures=failures,
        success_rate=beta_success_rate(successes, failures),
        execution_count=successes + failures,
        last_executed=draw(st.none() | TIMES),
        version=version,
        deprecated=draw(st.booleans()),
        created_at=draw(TIMES),
        updated_at=draw(TIMES),
        fsrs=draw(fsrs_states()),
        access_count=draw(st.integers(0, 999)),
        last_accessed=draw(st.none() | TIMES),
        index_state=IndexState.INDEXED,
    )
    versions = [
        SkillVersion(
            version=v,
            replaced_at=draw(TIMES),
            skill=skill.model_copy(update={"version": v, "task": draw(TEXT)}),
        )
        for v in range(1, version)
    ]
    executions = [
        SkillExecution(
            id=uuid4(),
            skill_id=skill.id,
            skill_version=draw(st.integers(1, version)),
            success=draw(st.booleans()),
            duration_ms=draw(st.floats(0.0, 1e6)),
            failed_step=None,
            error=draw(st.none() | TEXT),
            executed_at=draw(TIMES),
        )
        for _ in range(draw(st.integers(0, 3)))
    ]
    return skill, draw(st.lists(TIMES, max_size=4)), versions, executions


@st.composite
def stores(draw: st.DrawFn) -> dict[str, dict[str, Any]]:
    sessions = draw(st.lists(st.sampled_from(["s1", "s-2", "a.b:c"]), min_size=1, unique=True))
    out: dict[str, dict[str, Any]] = {}
    for s in sessions:
        ents = draw(st.lists(entities(s), max_size=4))
        pairs = draw(
            st.lists(
                st.tuples(st.integers(0, 3), st.integers(0, 3), st.sampled_from(RelationType)),
                unique=True,
                max_size=4,
            )
        )
        rels = [
            Relation(
                id=uuid4(),
                session_id=s,
                source_id=ents[a][0].id,
                target_id=ents[b][0].id,
                relation_type=t,
                weight=draw(UNIT),
                created_at=draw(TIMES),
                last_strengthened=draw(TIMES),
                valid_from=draw(TIMES),
                valid_to=draw(st.none() | TIMES),
            )
            for a, b, t in pairs
            if a < len(ents) and b < len(ents) and a != b
        ]
        encoder = draw(st.none() | st.tuples(st.integers(1, 99), st.binary(min_size=1)))
        links = draw(st.lists(st.tuples(st.integers(0, 4), st.integers(0, 4), UNIT, TIMES)))
        eps = draw(st.lists(episodes(s), max_size=5))
        edges = {
            HebbianEdge.key(eps[x].id, eps[y].id): HebbianEdge(eps[x].id, eps[y].id, w, t)
            for x, y, w, t in links
            if x < len(eps) and y < len(eps) and x != y
        }
        out[s] = {
            "edges": list(edges.values()),
            "encoder": None if encoder is None else EncoderBlob(*encoder),
            "created_at": draw(TIMES),
            "episodes": eps,
            "entities": ents,
            "relations": rels,
            "skills": draw(st.lists(skills(s), max_size=3)),
        }
    return out


def _vector(ident: UUID) -> Any:
    return unit(DIM, ident.int % 2**32)


async def seed(mem: Memories, data: dict[str, dict[str, Any]]) -> None:
    """Write a random store through the ports, every record indexed with a vector."""
    records, sem, proc = mem.engine.records, mem.semantic, mem.procedural
    for s, d in data.items():
        await records.ensure_session(s, d["created_at"])
        await records.insert_episodes(s, d["episodes"])
        items = [VectorItem(e.id, _vector(e.id), episode_payload(e)) for e in d["episodes"]]
        await mem.engine.vectors.upsert(s, items)
        for e, _ in d["entities"]:
            await sem.store.insert_entity(s, e)
        await sem.store.replace_access_times(s, {e.id: t for e, t in d["entities"]})
        ent_items = [VectorItem(e.id, _vector(e.id), entity_payload(e)) for e, _ in d["entities"]]
        await sem.vectors.upsert(s, ent_items)
        for r in d["relations"]:
            await sem.store.insert_relation(s, r)
        for sk, times, versions, executions in d["skills"]:
            await proc.store.insert_skill(s, sk)
            await proc.store.replace_access_times(s, {sk.id: times})
            await proc.store.restore_versions(s, versions)
            await proc.store.restore_executions(s, executions)
            await proc.vectors.upsert(s, [VectorItem(sk.id, _vector(sk.id), skill_payload(sk))])
        await mem.engine.learning.upsert_edges(s, d.get("edges", []))
        if d.get("encoder") is not None:
            assert await mem.engine.learning.save_encoder(s, d["encoder"], 0)


@given(data=stores())
@settings(
    max_examples=12,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
async def test_export_import_export_is_a_fixed_point(
    data: dict[str, dict[str, Any]], onnx_embedder: OnnxEmbedder
) -> None:
    clock = ManualClock()
    with scratch_dir("ww-transfer-") as tmp:
        async with memories(tmp / "a", onnx_embedder, clock) as a:
            await seed(a, data)
            first = await export_bytes(a)
        async with memories(tmp / "b", onnx_embedder, clock) as b:
            report = await import_bytes(b, first)
            second = await export_bytes(b)
    assert second == first
    assert report.reembedded == 0 and report.pending == 0
    n_eps = sum(len(d["episodes"]) for d in data.values())
    assert report.counts["episode"] == n_eps
    assert report.counts["relation"] == sum(len(d["relations"]) for d in data.values())
    assert report.counts["hebbian_edge"] == sum(len(d["edges"]) for d in data.values())


async def test_import_with_the_vector_index_down_leaves_records_pending_for_the_reconciler(
    tmp_path: Path, onnx_embedder: OnnxEmbedder
) -> None:
    clock = ManualClock()
    async with memories(tmp_path / "a", onnx_embedder, clock) as a:
        eps = [
            Episode(
                id=uuid4(),
                session_id="s1",
                content=f"the reactor log line {i}",
                timestamp=T0 + timedelta(minutes=i),
                ingested_at=T0,
                fsrs=a.engine.fsrs.new_state(T0),
            )
            for i in range(3)
        ]
        await seed(
            a,
            {
                "s1": {
                    "created_at": T0,
                    "episodes": eps,
                    "entities": [],
                    "relations": [],
                    "skills": [],
                }
            },
        )
        body = await export_bytes(a, vectors=False)
    async with memories(tmp_path / "b", onnx_embedder, clock) as b:
        await b.engine.vectors.close()  # the index goes away for real
        with pytest.raises(StoreUnavailableError):  # export answers 503 before streaming
            await Transfer(b).check()
        await Transfer(b).check(vectors=False)
        clock.advance(minutes=5)
        report = await import_bytes(b, body)
        assert b.engine.seconds_since_last_write() == 0  # optimisation waits for imports too
        assert report.pending == 3 and report.counts["episode"] == 3
        stored = await b.engine.records.get_episodes("s1", [e.id for e in eps])
        assert {e.index_state for e in stored.values()} == {IndexState.PENDING}
        b.engine.vectors = QdrantEdgeIndex(tmp_path / "b" / "vectors", DIM)
        await b.engine.vectors.open()
        healed = await b.engine.reconcile()
        assert healed.indexed == 3
        hits = await b.engine.recall_episodes("s1", "reactor log line 2", learn=False)
        assert hits.hits[0].id == eps[2].id and not hits.degraded
        expected = await b.engine.embedder.embed_many([e.content for e in eps])
        got = await b.engine.vectors.get_vectors("s1", [e.id for e in eps])
        for i, e in enumerate(eps):
            assert abs(float(got[e.id] @ expected[i]) - 1.0) < 1e-5


async def test_the_ff_encoder_travels_unless_the_model_changed(
    tmp_path: Path, onnx_embedder: OnnxEmbedder
) -> None:
    clock = ManualClock()
    blob = EncoderBlob(7, bytes(range(256)) * 3)
    empty = {"created_at": T0, "episodes": [], "entities": [], "relations": [], "skills": []}
    async with memories(tmp_path / "a", onnx_embedder, clock) as a:
        await seed(a, {"s1": {**empty, "encoder": blob}})
        body = await export_bytes(a)
    assert b'"kind":"ff_encoder"' in body
    async with memories(tmp_path / "b", onnx_embedder, clock) as b:
        for _ in range(2):  # idempotent
            report = await import_bytes(b, body)
            assert report.counts["ff_encoder"] == 1 and report.skipped == {}
            assert await b.engine.learning.load_encoder("s1") == blob
        assert await export_bytes(b) == body
    # From another model the encoder's weights describe another vector space: skipped.
    foreign = body.replace(b'"embedding_model":"all-MiniLM-L6-v2-int8"', b'"embedding_model":"x"')
    async with memories(tmp_path / "c", onnx_embedder, clock) as c:
        report = await import_bytes(c, foreign)
        assert report.skipped == {"ff_encoder": 1} and report.counts["ff_encoder"] == 0
        assert await c.engine.learning.load_encoder("s1") is None


async def test_skills_carry_fsrs_and_an_export_without_it_still_imports(
    tmp_path: Path, onnx_embedder: OnnxEmbedder
) -> None:
    clock = ManualClock()
    reviewed = FSRSState(stability=4.5, difficulty=6.25, last_review=T0, reps=3, lapses=1)
    old = Skill(
        id=uuid4(),
        session_id="s1",
        name="deploy",
        domain="ops",
        task="deploy the service",
        steps=[],
        script="make deploy",
        script_generated=False,
        version=2,
        created_at=T0 - timedelta(days=3),
        updated_at=T0,
        fsrs=reviewed,
        index_state=IndexState.INDEXED,
    )
    skill = old.model_copy(update={"version": 3})
    version = SkillVersion(version=2, replaced_at=T0, skill=old)
    empty = {"created_at": T0, "episodes": [], "entities": [], "relations": []}
    async with memories(tmp_path / "a", onnx_embedder, clock) as a:
        await seed(a, {"s1": {**empty, "skills": [(skill, [], [version], [])]}})
        body = await export_bytes(a)
    lines = [json.loads(line) for line in body.splitlines()]
    [line] = [x for x in lines if x["kind"] == "skill"]
    assert FSRSState.model_validate(line["record"]["fsrs"]) == reviewed
    async with memories(tmp_path / "b", onnx_embedder, clock) as b:
        await import_bytes(b, body)
        got = await b.procedural.store.get_skill("s1", skill.id)
        assert got is not None and got.fsrs == reviewed
    # An export written before skills had FSRS state: neither the skill nor its snapshot
    # has one, and both import with the state of a skill created then.
    for x in lines:
        if x["kind"] == "skill":
            del x["record"]["fsrs"]
        elif x["kind"] == "skill_version":
            del x["record"]["skill"]["fsrs"]
    legacy = b"".join(json.dumps(x).encode() + b"\n" for x in lines)
    default = Fsrs().new_state(old.created_at)
    async with memories(tmp_path / "c", onnx_embedder, clock) as c:
        report = await import_bytes(c, legacy)
        assert report.counts["skill"] == 1 and report.counts["skill_version"] == 1
        got = await c.procedural.store.get_skill("s1", skill.id)
        assert got is not None and got.fsrs == default
        assert got == skill.model_copy(update={"fsrs": default})
        [kept] = await c.procedural.store.versions("s1", skill.id)
        assert kept.skill.fsrs == default
