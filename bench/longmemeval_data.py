"""Load a file in LongMemEval's layout into the LoCoMo bench's dataset shape.

Each question becomes a conversation of its own: its haystack's user turns, one turn per
memory, ``dia_id`` = ``<session id>_<turn number>`` (the turn's position in its session,
assistant turns counted, so ids point into the original file), timestamp = the session's
date plus the turn number in seconds (keeps the turns of a session in order). Gold turns are
the user turns marked ``has_answer`` in an answer session. A turn longer than an episode may
be (a few pasted documents) is cut to the limit for every system alike and counted; a blank
one is left out. The data is read from wherever ``--data`` points (gzip or plain JSON) and
never copied.
"""

from __future__ import annotations

import gzip
import json
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.locomo_data import Conversation, Dataset, Question, Turn
from ww.models.episodes import MAX_CONTENT_CHARS

__all__ = [
    "LmeData",
    "is_abstention",
    "load_longmemeval",
    "parse_date",
    "parse_longmemeval",
    "turn_session",
]

_DATE = re.compile(r"(\d{4})/(\d{1,2})/(\d{1,2})(?:\s*\([A-Za-z]+\))?\s*(\d{1,2}):(\d{2})")


@dataclass(slots=True)
class LmeData:
    """The questions as a :class:`Dataset`, with what LongMemEval adds to each question."""

    dataset: Dataset
    types: dict[str, str] = field(default_factory=dict)
    abstention: set[str] = field(default_factory=set)
    # Questions left out of recall scores: abstention ones and those without a gold turn.
    unscored: set[str] = field(default_factory=set)

    @property
    def scored(self) -> list[Question]:
        return [q for q in self.dataset.questions if q.qid not in self.unscored]


def parse_date(value: str) -> datetime:
    """``"2023/05/30 (Tue) 23:42"`` -> an aware UTC datetime."""
    m = _DATE.search(value or "")
    if m is None:
        raise ValueError(f"unreadable LongMemEval date: {value!r}")
    year, month, day, hour, minute = (int(g) for g in m.groups())
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def is_abstention(question_id: str) -> bool:
    return question_id.endswith("_abs")


def turn_session(dia_id: str) -> str:
    """The session part of a turn id: ``"answer_4be1b6b4_2_7"`` -> ``"answer_4be1b6b4_2"``."""
    return dia_id.rsplit("_", 1)[0]


def _turns(item: Mapping[str, Any], skipped: Counter[str]) -> tuple[list[Turn], set[str]]:
    answer_sessions = {str(s) for s in item.get("answer_session_ids", [])}
    turns: list[Turn] = []
    gold: set[str] = set()
    sessions = zip(
        item["haystack_session_ids"], item["haystack_dates"], item["haystack_sessions"], strict=True
    )
    for n, (sid, date, session) in enumerate(sessions):
        start = parse_date(str(date))
        for i, t in enumerate(session):
            if t.get("role") != "user":
                continue
            dia_id = f"{sid}_{i}"
            content = str(t["content"])
            if not content.strip():  # an episode needs content; nothing to find in it anyway
                skipped["blank_turns"] += 1
                continue
            if len(content) > MAX_CONTENT_CHARS:
                skipped["turns_cut_to_max_content"] += 1
                content = content[:MAX_CONTENT_CHARS]
            turns.append(Turn(dia_id, n, "user", content, start + timedelta(seconds=i)))
            if t.get("has_answer") and str(sid) in answer_sessions:
                gold.add(dia_id)
    return turns, gold


def parse_longmemeval(raw: Sequence[Mapping[str, Any]], limit: int | None = None) -> LmeData:
    out = LmeData(Dataset([]))
    for item in raw[:limit] if limit is not None else raw:
        qid = str(item["question_id"])
        turns, gold = _turns(item, out.dataset.skipped)
        # Turns keep file order; gold ids in that order too, for stable reports.
        evidence = tuple(t.dia_id for t in turns if t.dia_id in gold)
        out.types[qid] = str(item["question_type"])
        if is_abstention(qid):
            out.abstention.add(qid)
            out.unscored.add(qid)
            evidence = ()
        elif not evidence:
            out.unscored.add(qid)
            out.dataset.skipped["no_gold_turn"] += 1
        q = Question(
            qid, qid, str(item["question"]), 0, evidence, at=parse_date(str(item["question_date"]))
        )
        out.dataset.conversations.append(Conversation(qid, tuple(turns), (q,)))
    return out


def load_longmemeval(path: Path, limit: int | None = None) -> LmeData:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as fh:
        raw = json.load(fh)
    if not isinstance(raw, list):
        raise ValueError(f"{path}: expected a JSON list of questions")
    return parse_longmemeval(raw, limit)
