"""Run World Weaver over LoCoMo: in-process through the engine, or through the HTTP API."""

from __future__ import annotations

import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import numpy as np
import numpy.typing as npt

from bench.locomo_data import Conversation, Dataset, Turn
from ww.config import Settings
from ww.control.flags import Flags
from ww.embedding import Embedder, EmbeddingService
from ww.engine import Clock, MemoryEngine, Preset, build_engine
from ww.models import EpisodeCreate
from ww.models.episodes import RecallResult

__all__ = [
    "BATCH",
    "FEEDBACK_TOP",
    "EngineFactory",
    "MemoEmbedder",
    "PassResult",
    "check_loopback",
    "episode_items",
    "run_http_pass",
    "run_inprocess_pass",
]

BATCH = 1000
# Simulated feedback rates the hits a reader would look at: the top 10.
FEEDBACK_TOP = 10
_LOOPBACK = {"127.0.0.1", "localhost", "::1"}

# Builds an opened engine on a data dir; the default wraps build_engine.
EngineFactory = Callable[[Settings, EmbeddingService, Clock], MemoryEngine]
# A simulated clock, so that the dynamics have time to act between questions: it starts at a
# fixed instant (runs are reproducible) and moves on by the step after every question.
SIM_START = datetime(2026, 1, 1, tzinfo=UTC)


class SimClock:
    def __init__(self, start: datetime = SIM_START) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now


class MemoEmbedder:
    """An embedder that remembers every vector it computed, keyed by text.

    The vendored int8 model embeds one text per run, so a text's vector does not depend on
    what it is batched with: reusing it across baselines and passes changes no result, only
    the time spent.
    """

    def __init__(self, inner: Embedder) -> None:
        self._inner = inner
        self._memo: dict[str, npt.NDArray[np.float32]] = {}
        self._lock = threading.Lock()

    @property
    def model_id(self) -> str:
        return self._inner.model_id

    @property
    def dimension(self) -> int:
        return self._inner.dimension

    def embed(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        with self._lock:
            missing = list(dict.fromkeys(t for t in texts if t not in self._memo))
        if missing:
            rows = self._inner.embed(missing)
            with self._lock:
                self._memo.update(zip(missing, rows, strict=True))
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        with self._lock:
            return np.stack([self._memo[t] for t in texts]).astype(np.float32, copy=True)


@dataclass(slots=True)
class PassResult:
    rankings: dict[str, list[str]]
    ingest_s: float
    recall_s: float
    turns: int
    questions: int  # recalls timed: a second ask (``repeat``) counts too
    degraded: int = 0
    # Question id -> the calibrated relevance of its top hit (questions with a hit).
    top_relevance: dict[str, float] = field(default_factory=dict)
    # Question id -> the ranking of its second ask (``repeat_after``); empty without one.
    repeat: dict[str, list[str]] = field(default_factory=dict)

    @property
    def ingest_rate(self) -> float:
        return self.turns / self.ingest_s if self.ingest_s > 0 else 0.0

    def timings(self) -> dict[str, float]:
        return {
            "ingest_s": round(self.ingest_s, 3),
            "recall_s": round(self.recall_s, 3),
            "ingest_turns_per_s": round(self.ingest_rate, 1),
            "recall_ms_per_query": round(1000 * self.recall_s / max(1, self.questions), 2),
        }


def episode_items(turns: Sequence[Turn]) -> list[EpisodeCreate]:
    return [
        EpisodeCreate(
            content=t.content, timestamp=t.timestamp, speaker=t.speaker, external_id=t.dia_id
        )
        for t in turns
    ]


def _batches(items: Sequence[EpisodeCreate]) -> list[Sequence[EpisodeCreate]]:
    return [items[i : i + BATCH] for i in range(0, len(items), BATCH)]


def _default_factory(settings: Settings, service: EmbeddingService, clock: Clock) -> MemoryEngine:
    return build_engine(settings, embedder=service, clock=clock)


async def _ingest(engine: MemoryEngine, conv: Conversation, clock: SimClock, dated: bool) -> None:
    """All of a conversation's turns; ``dated`` writes each session (in time order) with the
    clock at its last turn, as if it had been stored when it happened."""
    if not dated:
        for batch in _batches(episode_items(conv.turns)):
            await engine.create_episodes(conv.session_id(), batch)
        return
    sessions: dict[int, list[Turn]] = {}
    for t in conv.turns:
        sessions.setdefault(t.session, []).append(t)

    def last(turns: list[Turn]) -> datetime | None:
        return max((t.timestamp for t in turns if t.timestamp is not None), default=None)

    for turns in sorted(sessions.values(), key=lambda ts: last(ts) or SIM_START):
        clock.now = last(turns) or clock.now
        for batch in _batches(episode_items(turns)):
            await engine.create_episodes(conv.session_id(), batch)


async def _give_feedback(
    engine: MemoryEngine, session: str, res: RecallResult, evidence: Collection[str]
) -> None:
    rewards = {h.id: 1.0 if h.external_id in evidence else 0.0 for h in res.hits[:FEEDBACK_TOP]}
    await engine.feedback(session, res.recall_id, rewards=rewards)


def _ids(res: RecallResult) -> list[str]:
    return [h.external_id for h in res.hits if h.external_id]


async def run_inprocess_pass(
    data: Dataset,
    embedder: Embedder,
    *,
    preset: Preset,
    learn: bool,
    candidates: int,
    k: int = 50,
    clock_step: timedelta = timedelta(0),
    factory: EngineFactory = _default_factory,
    flags: Flags | None = None,
    feedback: bool = False,
    repeat_after: timedelta | None = None,
    dated: bool = False,
) -> PassResult:
    """One pass on a fresh data directory: ingest every conversation, then ask in file order,
    the simulated clock moving ``clock_step`` after each question.

    ``flags`` replaces the environment's feature flags (default factory only). ``feedback``
    simulates a user as questions stream in: right after each recall, reward 1 for each of
    the top ``FEEDBACK_TOP`` hits that is an evidence turn of the question and 0 for the
    others, so learning can only help the questions that come later. ``repeat_after`` asks
    each question a second time, that long after the first ask (and its feedback), the
    clock and ``at`` moved on by it: the second ask's rankings go to ``PassResult.repeat``.
    ``dated`` replays the data's own dates: each session is stored with the clock at its
    time, and a question with a date is asked with the clock at that date."""
    if flags is not None and factory is _default_factory:

        def factory(settings: Settings, service: EmbeddingService, clock: Clock) -> MemoryEngine:
            return build_engine(settings, embedder=service, clock=clock, flags=flags)

    with tempfile.TemporaryDirectory(prefix="ww-locomo-") as tmp:
        settings = Settings(data_dir=Path(tmp), recall_candidates=candidates)
        service = EmbeddingService(
            embedder,
            cache_size=settings.embedding_cache_size,
            batch_size=settings.embedding_batch_size,
        )
        clock = SimClock()
        engine = factory(settings, service, clock)
        await engine.open()
        try:
            t0 = time.perf_counter()
            for conv in data.conversations:
                await _ingest(engine, conv, clock, dated)
            t1 = time.perf_counter()
            out: dict[str, list[str]] = {}
            repeat: dict[str, list[str]] = {}
            top: dict[str, float] = {}
            degraded = 0
            for conv in data.conversations:
                session = conv.session_id()
                for q in conv.questions:
                    if dated and q.at is not None:
                        clock.now = q.at
                    res = await engine.recall_episodes(
                        session, q.text, limit=k, preset=preset, learn=learn, at=q.at
                    )
                    degraded += res.degraded
                    out[q.qid] = _ids(res)
                    if res.hits:
                        top[q.qid] = res.hits[0].relevance
                    if feedback and learn and res.hits:
                        await _give_feedback(engine, session, res, set(q.evidence))
                    if repeat_after is not None:
                        clock.now += repeat_after
                        again = await engine.recall_episodes(
                            session,
                            q.text,
                            limit=k,
                            preset=preset,
                            learn=learn,
                            at=None if q.at is None else q.at + repeat_after,
                        )
                        degraded += again.degraded
                        repeat[q.qid] = _ids(again)
                    clock.now += clock_step
            t2 = time.perf_counter()
            if not learn:  # after the timing: these recalls only read the top hit's relevance
                for conv in data.conversations:
                    for q in conv.unanswerable:
                        res = await engine.recall_episodes(
                            conv.session_id(), q.text, limit=1, learn=False, at=q.at
                        )
                        if res.hits:
                            top[q.qid] = res.hits[0].relevance
        finally:
            await engine.close()
    n_q = sum(len(c.questions) for c in data.conversations) * (1 + (repeat_after is not None))
    return PassResult(out, t1 - t0, t2 - t1, data.turns, n_q, degraded, top, repeat)


def check_loopback(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or (parts.hostname or "") not in _LOOPBACK:
        raise ValueError(f"--http must point at a loopback server (127.0.0.1/localhost), got {url}")
    return url.rstrip("/")


def _http_session(conv: Conversation, tag: str) -> str:
    return conv.session_id(prefix=f"locomo-{tag}")


def run_http_pass(
    data: Dataset,
    base_url: str,
    *,
    preset: Preset,
    learn: bool,
    k: int = 50,
    keep: bool = False,
    timeout_s: float = 300.0,
) -> PassResult:
    """Same as :func:`run_inprocess_pass` through a running server.

    Each pass writes into sessions with a fresh tag, so passes stay independent, and deletes
    them afterwards unless ``keep``.
    """
    import httpx

    tag = f"{'learn' if learn else 'ro'}-{uuid.uuid4().hex[:8]}"
    with httpx.Client(base_url=check_loopback(base_url), timeout=timeout_s) as client:

        def post(path: str, session: str, body: dict[str, Any]) -> dict[str, Any]:
            r = client.post(path, json=body, headers={"X-Session-ID": session})
            r.raise_for_status()
            result: dict[str, Any] = r.json()
            return result

        t0 = time.perf_counter()
        for conv in data.conversations:
            for batch in _batches(episode_items(conv.turns)):
                episodes = [e.model_dump(mode="json", exclude_none=True) for e in batch]
                post("/api/v1/episodes/batch", _http_session(conv, tag), {"episodes": episodes})
        t1 = time.perf_counter()
        out: dict[str, list[str]] = {}
        top: dict[str, float] = {}
        degraded = 0
        for conv in data.conversations:
            for q in conv.questions:
                body: dict[str, Any] = {
                    "query": q.text,
                    "limit": k,
                    "preset": str(preset),
                    "learn": learn,
                }
                if q.at is not None:
                    body["at"] = q.at.isoformat()
                res = post("/api/v1/episodes/recall", _http_session(conv, tag), body)
                degraded += bool(res.get("degraded"))
                out[q.qid] = [h["external_id"] for h in res["hits"] if h.get("external_id")]
                if res["hits"]:
                    top[q.qid] = float(res["hits"][0]["relevance"])
        t2 = time.perf_counter()
        if not keep:
            for conv in data.conversations:
                client.delete(f"/api/v1/sessions/{_http_session(conv, tag)}")
    n_q = sum(len(c.questions) for c in data.conversations)
    return PassResult(out, t1 - t0, t2 - t1, data.turns, n_q, degraded, top)
