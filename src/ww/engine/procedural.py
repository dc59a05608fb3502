"""ProceduralMemory: skills, their versions and executions, recall and how-to.

Same write protocol as episodes: record pending -> vector upserted -> indexed. A skill's
embedded text is its ``task``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from uuid import UUID, uuid4

from ww.engine.activation import (
    HOWTO_FORMULA,
    base_level,
    base_level_probability,
    beta_success_rate,
    howto_confidence,
)
from ww.engine.dynamics import ReviewRating
from ww.engine.kind_memory import Beside, StoredKind
from ww.engine.kinds import candidates
from ww.models import EpisodeFilter, IndexState, MemoryType
from ww.models.procedural import (
    HowTo,
    HowToRequest,
    Skill,
    SkillCreate,
    SkillExecution,
    SkillExecutionCreate,
    SkillExecutionResult,
    SkillHit,
    SkillRecallRequest,
    SkillRecallResult,
    SkillScoreParts,
    SkillStep,
    SkillUpdate,
    SkillVersion,
)
from ww.storage.diskspace import learning_skipped_when_full
from ww.storage.memory_payload import skill_payload
from ww.storage.ports import ScoredId, StoreUnavailableError, Vector, VectorIndex
from ww.storage.ports.skills import SkillAccess, SkillFilter, SkillStore

__all__ = [
    "HOWTO_MIN_SIMILARITY",
    "SKILL_WEIGHTS",
    "InvalidSkillError",
    "ProceduralMemory",
    "SkillWeights",
    "script_from_steps",
]

log = logging.getLogger(__name__)


class InvalidSkillError(ValueError):
    """A request that is well-formed but contradicts the skill (maps to HTTP 422)."""


@dataclass(frozen=True, slots=True)
class SkillWeights:
    semantic: float = 0.60
    keyword: float = 0.20
    success_rate: float = 0.15
    base_level: float = 0.05


SKILL_WEIGHTS = SkillWeights()

# How-to answers only with a skill whose task is at least this close to the asked one
# (cosine, as the vector index scores it). With the bundled MiniLM, unrelated tasks score
# about -0.1 to 0.1 and rewordings of the same task 0.4 to 0.9, so 0.2 sits between the two;
# a skill matched by a shared word alone stays below it.
HOWTO_MIN_SIMILARITY = 0.2


def script_from_steps(name: str, steps: Sequence[SkillStep]) -> str:
    """A deterministic, human-readable script: one numbered line per step, with its tool,
    parameters (sorted, JSON-encoded) and expected outcome."""
    lines = [f"# {name}"]
    for step in sorted(steps, key=lambda s: s.order):
        line = f"{step.order}. {step.action}"
        if step.tool:
            line += f" [tool: {step.tool}]"
        if step.parameters:
            params = ", ".join(f"{k}={json.dumps(v)}" for k, v in sorted(step.parameters.items()))
            line += f" ({params})"
        if step.expected_outcome:
            line += f" -> expect: {step.expected_outcome}"
        lines.append(line)
    return "\n".join(lines) + "\n"


class ProceduralMemory(StoredKind[Skill, SkillFilter]):
    store: SkillStore

    def __init__(
        self,
        *,
        store: SkillStore,
        vectors: VectorIndex,
        beside: Beside,
        weights: SkillWeights = SKILL_WEIGHTS,
    ) -> None:
        super().__init__(
            name="skills",
            store=store,
            vectors=vectors,
            beside=beside,
            text=lambda skill: skill.task,
            payload=skill_payload,
            pending=store.pending_skills,
            kind=MemoryType.SKILL,
            insert=store.insert_skill,
            page=store.list_skills,
            load=store.get_skills,
            # A review is not an edit: no previous version is kept and ``version`` stays.
            save_one=store.update_skill,
        )
        self.weights = weights

    # -- skills -----------------------------------------------------------------------------
    async def create(self, session_id: str, body: SkillCreate) -> Skill:
        now = self.clock()
        generated = body.script is None
        skill = Skill(
            **body.model_dump(exclude={"script"}),
            id=uuid4(),
            session_id=session_id,
            script=script_from_steps(body.name, body.steps) if generated else body.script,
            script_generated=generated,
            created_at=now,
            updated_at=now,
            fsrs=self.fsrs.new_state(now),
        )
        return await self._create(session_id, skill, now)

    async def get(self, session_id: str, skill_id: UUID) -> Skill | None:
        return await self.store.get_skill(session_id, skill_id)

    async def update(self, session_id: str, skill_id: UUID, patch: SkillUpdate) -> Skill | None:
        current = await self.store.get_skill(session_id, skill_id)
        if current is None:
            return None
        changes = patch.model_dump(exclude_unset=True)
        merged = {**current.model_dump(), **changes}
        steps = [SkillStep.model_validate(s) for s in merged["steps"]]
        if "script" in changes and changes["script"] is not None:
            merged["script_generated"] = False
        elif "script" in changes or ("steps" in changes and current.script_generated):
            # An explicit null, or new steps under a generated script: write it afresh.
            if not steps:
                raise InvalidSkillError("a skill without steps needs a script")
            merged["script"] = script_from_steps(merged["name"], steps)
            merged["script_generated"] = True
        if not steps and not merged["script"]:
            raise InvalidSkillError("a skill needs steps or a script")
        now = self.clock()
        updated = Skill.model_validate(
            {
                **merged,
                "version": current.version + 1,
                "updated_at": max(now, current.updated_at),
                "index_state": IndexState.PENDING,
            }
        )
        task_changed = updated.task != current.task
        vectors = await self.writes.embed([updated]) if task_changed else None
        if not await self.store.update_skill(session_id, updated, previous=current):
            return None
        if vectors is not None:
            return (await self.writes.index(session_id, [updated], vectors))[0]
        await self.store.mark_indexed(session_id, [updated.id])
        indexed = updated.model_copy(update={"index_state": IndexState.INDEXED})
        return await self.writes.sync_payload(session_id, indexed)

    async def versions(self, session_id: str, skill_id: UUID) -> list[SkillVersion] | None:
        if await self.store.get_skill(session_id, skill_id) is None:
            return None
        return await self.store.versions(session_id, skill_id)

    async def delete(self, session_id: str, skill_id: UUID) -> bool:
        if await self.store.get_skill(session_id, skill_id) is None:
            return False
        return await self.writes.delete(session_id, skill_id, self.store.delete_skill)

    async def execute(
        self, session_id: str, skill_id: UUID, body: SkillExecutionCreate
    ) -> SkillExecutionResult | None:
        skill = await self.store.get_skill(session_id, skill_id)
        if skill is None:
            return None
        if body.failed_step is not None and body.failed_step not in {s.order for s in skill.steps}:
            raise InvalidSkillError(f"the skill has no step {body.failed_step}")
        now = self.clock()
        successes = skill.successes + int(body.success)
        failures = skill.failures + int(not body.success)
        updated = skill.model_copy(
            update={
                "successes": successes,
                "failures": failures,
                "success_rate": beta_success_rate(successes, failures),
                "execution_count": skill.execution_count + 1,
                "last_executed": now,
                "access_count": skill.access_count + 1,
                "last_accessed": now,
            }
        )
        execution = SkillExecution(
            id=uuid4(),
            skill_id=skill.id,
            skill_version=skill.version,
            success=body.success,
            duration_ms=body.duration_ms,
            failed_step=body.failed_step,
            error=body.error,
            executed_at=now,
        )
        if not await self.store.record_execution(session_id, updated, execution):
            return None
        return SkillExecutionResult(execution=execution, skill=updated)

    async def executions(
        self, session_id: str, skill_id: UUID, limit: int
    ) -> list[SkillExecution] | None:
        if await self.store.get_skill(session_id, skill_id) is None:
            return None
        return await self.store.executions(session_id, skill_id, limit)

    async def deprecate(
        self, session_id: str, skill_id: UUID, replaced_by: UUID | None, *, replace: bool = True
    ) -> Skill | None:
        """None when ``skill_id`` or ``replaced_by`` is unknown. With ``replace`` false the
        skill keeps the replacement it has (deprecating again must not forget it)."""
        skill = await self.store.get_skill(session_id, skill_id)
        if skill is None:
            return None
        if not replace:
            replaced_by = skill.replaced_by
        elif replaced_by is not None:
            if replaced_by == skill_id:
                raise InvalidSkillError("a skill cannot replace itself")
            if await self.store.get_skill(session_id, replaced_by) is None:
                return None
        updated = skill.model_copy(
            update={"deprecated": True, "replaced_by": replaced_by, "updated_at": self.clock()}
        )
        if not await self.store.update_skill(session_id, updated):
            return None
        return await self.writes.sync_payload(session_id, updated)

    # -- recall -----------------------------------------------------------------------------
    async def _dense(
        self, session_id: str, vector: Vector, flt: SkillFilter, n: int
    ) -> list[ScoredId] | None:
        # Domain and deprecation are payload filters inside the index (memory_payload.py).
        vf = EpisodeFilter(project=flt.domain, include_archived=flt.include_deprecated)
        try:
            return await self.vectors.search(session_id, vector, vf, n)
        except StoreUnavailableError as exc:
            log.warning("skill recall degraded to keyword only: %s", exc)
            return None

    async def _rank(
        self,
        session_id: str,
        query: str,
        flt: SkillFilter,
        limit: int,
        query_vector: Vector | None = None,
    ) -> tuple[list[SkillHit], dict[UUID, float], bool]:
        now = self.clock()
        n = max(self.candidates, limit)
        # Unified recall embeds the query once and passes the vector down.
        qv = query_vector if query_vector is not None else await self.embedder.embed_one(query)
        found = await candidates(
            self.vectors,
            session_id,
            qv,
            await self._dense(session_id, qv, flt, n),
            await self.store.keyword_search(session_id, query, flt, n),
        )
        cosine, kw, ids = found.cosine, found.keyword, found.ids
        skills = await self.store.get_skills(session_id, ids)
        times = await self.store.access_times(session_id, ids)
        w = self.weights
        scored: list[tuple[float, str, SkillHit]] = []
        for i in ids:
            if i not in skills:
                continue
            parts = SkillScoreParts(
                semantic=max(0.0, min(1.0, cosine.get(i, 0.0))),
                keyword=kw.get(i, 0.0),
                success_rate=skills[i].success_rate,
                base_level=base_level_probability(base_level(times.get(i, []), now)),
            )
            score = (
                w.semantic * parts.semantic
                + w.keyword * parts.keyword
                + w.success_rate * parts.success_rate
                + w.base_level * parts.base_level
            )
            scored.append(
                (-score, str(i), SkillHit(id=i, score=score, score_parts=parts, skill=skills[i]))
            )
        scored.sort(key=lambda t: (t[0], t[1]))
        return [h for _, _, h in scored[:limit]], cosine, found.degraded

    async def _learn(self, session_id: str, skills: Sequence[Skill]) -> None:
        """A recall with ``learn`` is an access and a Good review, as for entities."""
        if skills:
            now = self.clock()
            updates = [
                SkillAccess(
                    id=s.id,
                    fsrs=self.fsrs.review(s.fsrs, ReviewRating.GOOD, now),
                    access_count=s.access_count + 1,
                    last_accessed=now,
                )
                for s in skills
            ]
            await self.store.record_access(session_id, updates, now)

    async def recall(
        self,
        session_id: str,
        req: SkillRecallRequest,
        query_vector: Vector | None = None,
        *,
        log_recall: bool = True,
    ) -> SkillRecallResult:
        flt = SkillFilter(domain=req.domain, include_deprecated=req.include_deprecated)
        qv = query_vector if query_vector is not None else await self.embedder.embed_one(req.query)
        hits, _, degraded = await self._rank(session_id, req.query, flt, req.limit, qv)
        result = SkillRecallResult(recall_id=uuid4(), query=req.query, hits=hits, degraded=degraded)
        if req.learn:
            with learning_skipped_when_full():
                await self._learn(session_id, [h.skill for h in hits])
                await self._after_recall(
                    session_id, result.recall_id, qv, hits, self.clock(), log_recall
                )
        return result

    async def how_to(self, session_id: str, req: HowToRequest) -> HowTo:
        """The live skill with the highest confidence among the recalled candidates."""
        flt = SkillFilter(domain=req.domain, include_deprecated=False)
        ranked, cosine, _ = await self._rank(session_id, req.task, flt, 10)
        # Keyword overlap alone can rank an unrelated skill; below the floor it is no answer.
        hits = [h for h in ranked if cosine.get(h.id, 0.0) >= HOWTO_MIN_SIMILARITY]
        best: tuple[float, str, SkillHit] | None = None
        for h in hits:
            conf = howto_confidence(cosine.get(h.id, 0.0), h.skill.success_rate)
            if best is None or (-conf, str(h.id)) < (best[0], best[1]):
                best = (-conf, str(h.id), h)
        if best is None:
            return HowTo(
                task=req.task,
                skill=None,
                steps=[],
                similarity=0.0,
                success_rate=0.0,
                confidence=0.0,
                confidence_formula=HOWTO_FORMULA,
            )
        hit = best[2]
        if req.learn:
            with learning_skipped_when_full():
                await self._learn(session_id, [hit.skill])
        similarity = max(0.0, min(1.0, cosine.get(hit.id, 0.0)))
        return HowTo(
            task=req.task,
            skill=hit.skill,
            steps=hit.skill.steps,
            similarity=similarity,
            success_rate=hit.skill.success_rate,
            confidence=-best[0],
            confidence_formula=HOWTO_FORMULA,
            alternatives=[h for h in hits if h.id != hit.id][:3],
        )
