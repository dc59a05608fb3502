"""Load a file in LoCoMo's layout into turns and scored questions, repairing evidence ids.

The dataset itself is never copied: it is read from wherever ``--data`` points.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

__all__ = [
    "SCORED_CATEGORIES",
    "UNANSWERABLE_CATEGORY",
    "Conversation",
    "Dataset",
    "Question",
    "Turn",
    "load_locomo",
    "parse_dataset",
    "parse_session_time",
    "repair_evidence",
    "session_id_for",
    "turn_content",
    "turn_session",
]

SCORED_CATEGORIES = (1, 2, 3, 4)
# Adversarial questions: what they ask was never said. Not scored for recall; they measure
# whether the top hit's relevance can tell "nothing relevant" from a match.
UNANSWERABLE_CATEGORY = 5
_SESSION_KEY = re.compile(r"session_(\d+)")
_EVIDENCE = re.compile(r"D:?(\d+):(\d+)")
_BAD_SESSION_CHARS = re.compile(r"[^A-Za-z0-9_.:-]")
_TIME = re.compile(
    r"(\d{1,2}):(\d{2})\s*([ap])\.?m\.?\s+on\s+(\d{1,2})\s+([A-Za-z]+),?\s+(\d{4})", re.I
)
_MONTH_NAMES = (
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
)
_MONTHS = {name: i + 1 for i, name in enumerate(_MONTH_NAMES)}


@dataclass(frozen=True, slots=True)
class Turn:
    dia_id: str
    session: int
    speaker: str
    content: str
    timestamp: datetime | None


@dataclass(frozen=True, slots=True)
class Question:
    qid: str
    sample_id: str
    text: str
    category: int
    evidence: tuple[str, ...]
    # When the question is asked; None recalls at the clock's now.
    at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Conversation:
    sample_id: str
    turns: tuple[Turn, ...]
    questions: tuple[Question, ...]
    # Asked in read-only passes for the top hit's relevance only, never scored for recall.
    unanswerable: tuple[Question, ...] = ()

    def session_id(self, prefix: str = "locomo") -> str:
        return session_id_for(self.sample_id, prefix)


@dataclass(slots=True)
class Dataset:
    conversations: list[Conversation]
    skipped: Counter[str] = field(default_factory=Counter)
    repaired_ids: int = 0
    dropped_ids: int = 0
    untimed_sessions: int = 0

    @property
    def questions(self) -> list[Question]:
        return [q for c in self.conversations for q in c.questions]

    @property
    def turns(self) -> int:
        return sum(len(c.turns) for c in self.conversations)


def session_id_for(sample_id: str, prefix: str = "locomo") -> str:
    """A WW session id (``^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$``) for a conversation."""
    return f"{prefix}.{_BAD_SESSION_CHARS.sub('_', sample_id)}"[:128]


def turn_session(dia_id: str) -> str:
    """The session part of a dialogue id: ``"D3:7"`` -> ``"D3"``."""
    return dia_id.split(":", 1)[0]


def turn_content(speaker: str, text: str, caption: str | None = None) -> str:
    content = f"{speaker}: {text}"
    if caption:
        content += f" [shared an image: {caption}]"
    return content


def parse_session_time(value: str) -> datetime | None:
    """``"1:56 pm on 8 May, 2023"`` -> an aware UTC datetime; ``None`` if unparseable."""
    m = _TIME.search(value or "")
    if m is None:
        return None
    hour, minute, half, day, month_name, year = m.groups()
    month = _MONTHS.get(month_name.lower())
    if month is None:
        return None
    h = int(hour) % 12 + (12 if half.lower() == "p" else 0)
    try:
        return datetime(int(year), month, int(day), h, int(minute), tzinfo=UTC)
    except ValueError:
        return None


def _normalise_id(piece: str) -> str:
    m = _EVIDENCE.fullmatch(piece)
    return f"D{int(m.group(1))}:{int(m.group(2))}" if m else piece


def repair_evidence(raw: Iterable[str], valid: Collection[str]) -> tuple[list[str], int, int]:
    """Split, normalise and filter evidence ids.

    ``"D8:6; D9:17"`` gives two ids, ``"D:11:26"`` becomes ``"D11:26"``; ids not in ``valid``
    are dropped. Returns (ids in order without duplicates, ids repaired, ids dropped).
    """
    out: dict[str, None] = {}
    repaired = dropped = 0
    for item in raw:
        pieces = [p for p in re.split(r"[;,\s]+", str(item)) if p]
        idents = [_normalise_id(p) for p in pieces]
        if idents != [item]:
            repaired += 1
        for ident in idents:
            if ident in valid:
                out.setdefault(ident, None)
            else:
                dropped += 1
        dropped += not idents
    return list(out), repaired, dropped


def _turns(conv: dict[str, Any]) -> tuple[list[Turn], int]:
    sessions = sorted(
        (int(m.group(1)), v)
        for k, v in conv.items()
        if (m := _SESSION_KEY.fullmatch(k)) and isinstance(v, list)
    )
    turns: list[Turn] = []
    untimed = 0
    for n, items in sessions:
        start = parse_session_time(str(conv.get(f"session_{n}_date_time", "")))
        untimed += start is None
        for i, t in enumerate(items):
            speaker = str(t.get("speaker", ""))
            content = turn_content(speaker, str(t.get("text", "")), t.get("blip_caption"))
            ts = start + timedelta(seconds=i) if start is not None else None
            turns.append(Turn(str(t["dia_id"]), n, speaker, content, ts))
    return turns, untimed


def parse_dataset(raw: Sequence[dict[str, Any]], limit: int | None = None) -> Dataset:
    data = Dataset([])
    for conv in raw[:limit] if limit is not None else raw:
        sample_id = str(conv["sample_id"])
        turns, untimed = _turns(conv["conversation"])
        data.untimed_sessions += untimed
        valid = {t.dia_id for t in turns}
        questions: list[Question] = []
        unanswerable: list[Question] = []
        for i, qa in enumerate(conv.get("qa", [])):
            category = int(qa.get("category", 0))
            if category == UNANSWERABLE_CATEGORY and "question" in qa:
                unanswerable.append(
                    Question(f"{sample_id}#{i}", sample_id, str(qa["question"]), category, ())
                )
            if category not in SCORED_CATEGORIES:
                data.skipped[f"category_{category}"] += 1
                continue
            evidence, repaired, dropped = repair_evidence(qa.get("evidence", []), valid)
            data.repaired_ids += repaired
            data.dropped_ids += dropped
            if not evidence:
                data.skipped["no_valid_evidence"] += 1
                continue
            qid = f"{sample_id}#{i}"
            questions.append(
                Question(qid, sample_id, str(qa["question"]), category, tuple(evidence))
            )
        data.conversations.append(
            Conversation(sample_id, tuple(turns), tuple(questions), tuple(unanswerable))
        )
    return data


def load_locomo(path: Path, limit: int | None = None) -> Dataset:
    with path.open(encoding="utf-8") as fh:
        raw = json.load(fh)
    if not isinstance(raw, list):
        raise ValueError(f"{path}: expected a JSON list of conversations")
    return parse_dataset(raw, limit)
