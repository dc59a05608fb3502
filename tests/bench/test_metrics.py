"""The LoCoMo benchmark's metric code and evidence repair, on hand-made tiny data."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bench.locomo_data import (
    parse_dataset,
    parse_session_time,
    repair_evidence,
    session_id_for,
    turn_content,
)
from bench.metrics import (
    QuestionScore,
    aggregate,
    bootstrap_ci,
    paired_bootstrap_delta,
    score_question,
    top_is_gold,
)
from ww.config import SESSION_ID_PATTERN

VALID = {"D1:1", "D1:2", "D8:6", "D9:17", "D11:26"}


def test_repair_splits_and_normalises() -> None:
    ids, repaired, dropped = repair_evidence(["D8:6; D9:17", "D:11:26", "D1:1"], VALID)
    assert ids == ["D8:6", "D9:17", "D11:26", "D1:1"]
    assert repaired == 2
    assert dropped == 0


def test_repair_drops_unknown_and_duplicates() -> None:
    ids, _, dropped = repair_evidence(["D1:1", "D1:1", "D", "D30:1", ""], VALID)
    assert ids == ["D1:1"]
    assert dropped == 3


def test_parse_session_time() -> None:
    assert parse_session_time("1:56 pm on 8 May, 2023") == datetime(2023, 5, 8, 13, 56, tzinfo=UTC)
    assert parse_session_time("12:09 am on 13 September, 2023") == datetime(
        2023, 9, 13, 0, 9, tzinfo=UTC
    )
    assert parse_session_time("12:30 pm on 1 January, 2024") == datetime(
        2024, 1, 1, 12, 30, tzinfo=UTC
    )
    assert parse_session_time("sometime") is None


def test_session_id_is_valid() -> None:
    import re

    sid = session_id_for("conv 26/x")
    assert re.fullmatch(SESSION_ID_PATTERN, sid)
    assert re.fullmatch(SESSION_ID_PATTERN, session_id_for("a" * 300))


def _tiny() -> list[dict[str, object]]:
    return [
        {
            "sample_id": "s-1",
            "conversation": {
                "speaker_a": "Ann",
                "speaker_b": "Bob",
                "session_1_date_time": "1:56 pm on 8 May, 2023",
                "session_1": [
                    {"speaker": "Ann", "dia_id": "D1:1", "text": "hi"},
                    {"speaker": "Bob", "dia_id": "D1:2", "text": "look", "blip_caption": "a dog"},
                ],
                "session_2_date_time": "9:00 am on 10 May, 2023",
                "session_2": [{"speaker": "Ann", "dia_id": "D2:1", "text": "bye"}],
            },
            "qa": [
                {"question": "q1", "answer": "a", "evidence": ["D1:2; D2:1"], "category": 1},
                {"question": "q2", "answer": "a", "evidence": ["D7:1"], "category": 4},
                {"question": "q3", "evidence": ["D1:1"], "category": 5},
                {"question": "q4", "answer": "a", "evidence": ["D:1:1"], "category": 2},
            ],
        }
    ]


def test_parse_dataset() -> None:
    data = parse_dataset(_tiny())
    conv = data.conversations[0]
    assert [t.dia_id for t in conv.turns] == ["D1:1", "D1:2", "D2:1"]
    assert conv.turns[1].content == "Bob: look [shared an image: a dog]"
    assert conv.turns[0].content == turn_content("Ann", "hi")
    assert conv.turns[1].timestamp == datetime(2023, 5, 8, 13, 56, 1, tzinfo=UTC)
    assert conv.turns[2].session == 2
    assert [(q.text, q.category, q.evidence) for q in conv.questions] == [
        ("q1", 1, ("D1:2", "D2:1")),
        ("q4", 2, ("D1:1",)),
    ]
    assert data.skipped == {"category_5": 1, "no_valid_evidence": 1}
    # Category 5 is not scored for recall but kept to measure relevance, without evidence.
    assert [(q.qid, q.text, q.evidence) for q in conv.unanswerable] == [("s-1#2", "q3", ())]


def test_score_question() -> None:
    ranked = ["D5:1", "D3:2", None, "D1:1", "D9:9", "D3:2"]
    m = score_question(ranked, ["D1:1", "D3:2", "D4:4"], {"D5:1": 10, "D3:2": 5})
    assert m["recall@1"] == 0.0
    assert m["recall@5"] == pytest.approx(2 / 3)
    assert m["hit@1"] == 0.0
    assert m["hit@5"] == 1.0
    assert m["all@50"] == 0.0
    assert m["mrr"] == 0.5
    assert m["session_recall@10"] == pytest.approx(2 / 3)
    assert m["chars@10"] == 15.0
    full = score_question(["D1:1", "D4:4"], ["D4:4", "D1:1"])
    assert full["recall@1"] == 0.5
    assert full["all@5"] == 1.0
    assert full["mrr"] == 1.0
    assert score_question([], ["D1:1"])["mrr"] == 0.0
    with pytest.raises(ValueError):
        score_question(["D1:1"], [])


def test_aggregate_groups_and_ci() -> None:
    scores = [
        QuestionScore("a", "1", {"recall@10": 1.0, "mrr": 1.0}),
        QuestionScore("b", "1", {"recall@10": 0.0, "mrr": 0.0}),
        QuestionScore("c", "4", {"recall@10": 0.5, "mrr": 0.5}),
    ]
    out = aggregate(scores)
    assert out["all"]["n"] == 3
    assert out["all"]["recall@10"] == pytest.approx(0.5)
    assert out["1"]["recall@10"] == pytest.approx(0.5)
    assert out["4"]["mrr"] == pytest.approx(0.5)
    assert out["2"] == {"n": 0}
    lo, hi = out["all"]["recall@10_ci95"]  # type: ignore[misc]
    assert 0.0 <= lo <= 0.5 <= hi <= 1.0
    assert aggregate(scores) == out  # fixed seed: reproducible


def test_bootstrap() -> None:
    assert bootstrap_ci([0.3] * 20) == (pytest.approx(0.3), pytest.approx(0.3))
    d, lo, hi = paired_bootstrap_delta([1.0, 1.0, 0.0], [0.0, 1.0, 0.0])
    assert d == pytest.approx(1 / 3)
    assert lo <= d <= hi
    with pytest.raises(ValueError):
        paired_bootstrap_delta([1.0], [])


def test_top_is_gold_names_the_questions_whose_first_hit_is_gold() -> None:
    rankings = {"a1": ["x", "y"], "a2": ["z", "y"], "a3": ["y"], "a4": []}
    gold = {"a1": {"x"}, "a2": {"y"}, "a3": {"y"}, "a4": {"x"}, "a5": {"x"}}
    # a2's gold is second, a4 has no hit, a5 was never asked.
    assert top_is_gold(rankings, gold) == ["a1", "a3"]


def test_rrf() -> None:
    baselines = pytest.importorskip("bench.baselines")
    fused = baselines.rrf([["a", "b", "c"], ["b", "c", "a"]], 3)
    assert fused[0] == "b"
    assert set(fused) == {"a", "b", "c"}
    assert baselines.tokenize("Hello, World's 2nd!") == ["hello", "world", "s", "2nd"]
