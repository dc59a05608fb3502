"""The LongMemEval bench on a tiny file in LongMemEval's layout, written by the test."""

from __future__ import annotations

import gzip
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from bench.longmemeval import _parser, run
from bench.longmemeval_data import load_longmemeval, parse_date, parse_longmemeval
from bench.longmemeval_report import score_rankings, summarise
from bench.metrics import auroc, recall_any_all, relevance_report


def _session(*turns: tuple[str, str, bool]) -> list[dict[str, Any]]:
    return [
        {"role": role, "content": text, **({"has_answer": True} if gold else {})}
        for role, text, gold in turns
    ]


def _question(qid: str, qtype: str, question: str, answer_sessions: list[str]) -> dict[str, Any]:
    return {
        "question_id": qid,
        "question_type": qtype,
        "question": question,
        "question_date": "2023/05/30 (Tue) 23:42",
        "answer": "-",
        "answer_session_ids": answer_sessions,
        "haystack_session_ids": ["s_a", "s_b", "s_c"],
        "haystack_dates": [
            "2023/05/01 (Mon) 10:00",
            "2023/05/10 (Wed) 09:30",
            "2023/05/20 (Sat) 18:05",
        ],
        "haystack_sessions": [
            _session(
                ("user", "I adopted a grey cat named Pixel.", True),
                ("assistant", "Pixel is a lovely name.", True),
                ("user", "The weather is rainy today.", False),
            ),
            _session(
                ("user", "My sister lives in Lisbon now.", True),
                ("assistant", "Lisbon is sunny.", False),
                ("user", "I bought a bicycle for commuting.", False),
            ),
            _session(
                ("user", "Pixel learned to open the fridge.", True),
                ("user", "I started learning the cello.", False),
            ),
        ],
    }


RAW = [
    # gold turns: s_a_0 and s_c_0 (s_b is no answer session, so its has_answer is ignored)
    _question("q1", "multi-session", "What is my cat called?", ["s_a", "s_c"]),
    _question("q2", "single-session-user", "Where does my sister live?", ["s_b"]),
    _question("q3_abs", "single-session-user", "What is my dog called?", ["s_a"]),
    _question("q4", "temporal-reasoning", "What did I buy?", ["s_x"]),  # no gold turn
]


def test_parse_date_reads_the_layout() -> None:
    assert parse_date("2023/05/30 (Tue) 23:42") == datetime(2023, 5, 30, 23, 42, tzinfo=UTC)
    with pytest.raises(ValueError):
        parse_date("yesterday")


def test_one_memory_per_user_turn_with_session_ids_and_dates() -> None:
    lme = parse_longmemeval(RAW)
    conv = lme.dataset.conversations[0]
    assert [t.dia_id for t in conv.turns] == ["s_a_0", "s_a_2", "s_b_0", "s_b_2", "s_c_0", "s_c_1"]
    assert conv.turns[2].timestamp is not None
    assert conv.turns[2].timestamp.date() == datetime(2023, 5, 10).date()
    q = conv.questions[0]
    assert q.evidence == ("s_a_0", "s_c_0")
    assert q.at == datetime(2023, 5, 30, 23, 42, tzinfo=UTC)


def test_abstention_and_goldless_questions_are_not_scored() -> None:
    lme = parse_longmemeval(RAW)
    assert lme.abstention == {"q3_abs"}
    assert lme.unscored == {"q3_abs", "q4"}
    assert [q.qid for q in lme.scored] == ["q1", "q2"]
    # A ranking for the abstention question changes nothing: it is not scored.
    scores = score_rankings(lme, {"q3_abs": ["s_a_0"]})
    assert {s.qid for s in scores} == {"q1", "q2"}


def test_turn_and_session_recall_by_hand() -> None:
    lme = parse_longmemeval(RAW)
    # q1 gold turns s_a_0, s_c_0 (sessions s_a, s_c); q2 gold s_b_0 (session s_b).
    q1 = ["s_a_2", "s_b_0", "s_b_2", "s_c_1", "s_a_0", "s_c_0"]
    q2 = ["s_b_2", "s_a_0", "s_c_0", "s_c_1", "s_a_2", "s_b_0"]
    by_id = {s.qid: s.metrics for s in score_rankings(lme, {"q1": q1, "q2": q2})}
    # q1 turn: s_a_0 at rank 5, s_c_0 at rank 6 -> any@5, not all@5; all@10.
    assert by_id["q1"]["turn/recall_any@5"] == 1.0
    assert by_id["q1"]["turn/recall_all@5"] == 0.0
    assert by_id["q1"]["turn/recall_all@10"] == 1.0
    # q1 sessions by best turn: s_a, s_b, s_c -> both gold sessions within 5.
    assert by_id["q1"]["session/recall_all@5"] == 1.0
    # q2 turn: s_b_0 at rank 6; session s_b first (via s_b_2).
    assert by_id["q2"]["turn/recall_any@5"] == 0.0
    assert by_id["q2"]["turn/recall_all@10"] == 1.0
    assert by_id["q2"]["session/recall_all@5"] == 1.0
    summary = summarise(lme, score_rankings(lme, {"q1": q1, "q2": q2}))
    assert summary["all"]["n"] == 2
    assert summary["all"]["turn/recall_any@5"] == 0.5
    assert summary["all"]["turn/recall_all@5"] == 0.0
    assert summary["multi-session"]["turn/recall_any@5"] == 1.0
    assert summary["single-session-user"]["n"] == 1


def test_recall_any_all_and_auroc() -> None:
    assert recall_any_all(["a", "x", "b"], ["a", "b"], (1, 2, 3)) == {
        "recall_any@1": 1.0,
        "recall_all@1": 0.0,
        "recall_any@2": 1.0,
        "recall_all@2": 0.0,
        "recall_any@3": 1.0,
        "recall_all@3": 1.0,
    }
    with pytest.raises(ValueError):
        recall_any_all(["a"], [], (1,))
    assert auroc([0.9, 0.8], [0.1, 0.2]) == 1.0
    assert auroc([0.1], [0.9]) == 0.0
    assert auroc([0.5], [0.5]) == 0.5


def test_reads_gzip_and_plain_json(tmp_path: Path) -> None:
    plain = tmp_path / "lme.json"
    plain.write_text(json.dumps(RAW), encoding="utf-8")
    packed = tmp_path / "lme.json.gz"
    with gzip.open(packed, "wt", encoding="utf-8") as fh:
        json.dump(RAW, fh)
    a, b = load_longmemeval(plain), load_longmemeval(packed)
    assert [q.evidence for q in a.dataset.questions] == [q.evidence for q in b.dataset.questions]


def test_run_writes_the_report_shaped_like_locomo(tmp_path: Path) -> None:
    data = tmp_path / "lme.json"
    data.write_text(json.dumps(RAW), encoding="utf-8")
    out = tmp_path / "out"
    run(_parser().parse_args(["--data", str(data), "--out", str(out)]))
    report = json.loads((out / "longmemeval.json").read_text(encoding="utf-8"))
    assert set(report) == {"ww", "baselines", "info"}
    groups = {"all", "multi-session", "single-session-user"}
    assert set(report["ww"]["read_only"]) == groups
    for system in [report["ww"]["read_only"], *report["baselines"].values()]:
        assert set(system) == groups
        for level in ("turn", "session"):
            for k in (5, 10, 50):
                for kind in ("recall_any", "recall_all"):
                    assert 0.0 <= system["all"][f"{level}/{kind}@{k}"] <= 1.0
        assert system["all"]["n"] == 2
    assert {"bm25", "cosine", "rrf"} <= set(report["baselines"])
    # Six user turns per question, every one within the top 50: all gold is found.
    assert report["ww"]["read_only"]["all"]["turn/recall_all@50"] == 1.0
    assert report["info"]["questions"] == 4
    assert report["info"]["scored"] == 2
    assert report["info"]["abstention"] == 1
    relevance = report["info"]["relevance"]
    assert (relevance["answerable"], relevance["unanswerable"]) == (2, 1)
    assert 0.0 <= relevance["auroc"] <= 1.0
    assert "LongMemEval" in (out / "longmemeval.md").read_text(encoding="utf-8")


def test_relevance_report_by_hand() -> None:
    top = {"a1": 0.9, "a2": 0.4, "a3": 0.7, "u1": 0.6, "u2": 0.1}
    r = relevance_report(top, ["a1", "a2", "a3", "a4"], ["u1", "u2"], 0.5, ["a1", "a2"])
    # a4 has no hit: relevance 0. Pairs (pos > neg): a1 2, a2 1, a3 2, a4 0 -> 5 of 8.
    assert r["auroc"] == 5 / 8
    # Kept at 0.5: a1, a3 and u1 -> precision 2/3, recall 2/4; u2 dropped of 2 unanswerable.
    assert r["precision"] == 2 / 3
    assert r["recall"] == 0.5
    assert r["unanswerable_dropped"] == 0.5
    # First hits a1 0.9 and a2 0.4 are gold, a3 0.7 and a4 (none, 0) are not: 3 of 4 pairs.
    assert r["auroc_right_top"] == 3 / 4
    assert r["right_top"] == 2
