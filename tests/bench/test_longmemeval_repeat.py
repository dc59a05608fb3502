"""The LongMemEval repeated-question pass on a tiny haystack in LongMemEval's layout."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from bench.locomo_ww import MemoEmbedder, PassResult, run_inprocess_pass
from bench.longmemeval import _parser, main, run
from bench.longmemeval_data import parse_longmemeval
from bench.longmemeval_repeat import DELTA_METRICS
from bench.run_info import vendored_embedder
from tests.bench.haystack import GOLD_TEXT, NEAR_MISSES, QUESTION, RAINY
from ww.control.flags import MECHANISMS
from ww.engine import Preset

GOLD = "s_b_0"


def _user(*texts: str, gold: int | None = None) -> list[dict[str, Any]]:
    return [
        {"role": "user", "content": t, **({"has_answer": True} if i == gold else {})}
        for i, t in enumerate(texts)
    ]


def _item(qid: str) -> dict[str, Any]:
    return {
        "question_id": qid,
        "question_type": "single-session-user",
        "question": QUESTION,
        "question_date": "2023/05/30 (Tue) 23:42",
        "answer": "Pixel",
        "answer_session_ids": ["s_b"],
        "haystack_session_ids": ["s_a", "s_b", "s_c"],
        "haystack_dates": [
            "2023/05/01 (Mon) 10:00",
            "2023/05/10 (Wed) 09:30",
            "2023/05/20 (Sat) 18:05",
        ],
        "haystack_sessions": [
            _user(*NEAR_MISSES[:6]),
            _user(GOLD_TEXT, RAINY, gold=0),
            _user(*NEAR_MISSES[6:]),
        ],
    }


@pytest.fixture(scope="module")
def memo() -> MemoEmbedder:
    return MemoEmbedder(vendored_embedder())


def _pass(memo: MemoEmbedder, *, feedback: bool) -> PassResult:
    lme = parse_longmemeval([_item("q1")])
    return asyncio.run(
        run_inprocess_pass(
            lme.dataset,
            memo,
            preset=Preset.BALANCED,
            learn=feedback,
            candidates=50,
            feedback=feedback,
            repeat_after=timedelta(hours=24),
            dated=True,
        )
    )


def test_feedback_on_the_gold_turn_lifts_it_when_the_question_comes_again(
    memo: MemoEmbedder,
) -> None:
    read_only, fed = _pass(memo, feedback=False), _pass(memo, feedback=True)
    first = read_only.rankings["q1"].index(GOLD)
    assert first >= 5  # outside the top 5 on a first ask
    # Read-only learns nothing: a day later the gold turn is where it was.
    assert read_only.repeat["q1"].index(GOLD) == first
    # A first ask with learning ranks before it learns: the same as read-only.
    assert fed.rankings["q1"] == read_only.rankings["q1"]
    # One round of feedback (1 for the gold turn, 0 for the rest of the top 10) lifts it.
    assert fed.repeat["q1"].index(GOLD) < 5 <= first
    assert fed.questions == 2  # two asks, both timed


def test_run_reports_both_asks_of_every_mechanism(tmp_path: Path, memo: MemoEmbedder) -> None:
    data = tmp_path / "lme.json"
    data.write_text(json.dumps([_item("q1"), _item("q2_abs")]), encoding="utf-8")
    out = tmp_path / "out"
    args = ["--data", str(data), "--out", str(out), "--ablation", "--repeat-hours", "12"]
    result = run(_parser().parse_args(args))
    repeat = result["repeat"]
    passes = {"read_only", "feedback", "ablation.all_on", *(f"ablation.no_{m}" for m in MECHANISMS)}
    assert set(repeat) == passes
    for asks in repeat.values():
        assert set(asks) == {"first", "repeat"}
        for ask in asks.values():
            assert ask["summary"]["all"]["n"] == 1  # the abstention question is not scored
            assert set(ask["vs_read_only"]) == set(DELTA_METRICS)
    assert repeat["read_only"]["repeat"]["vs_read_only"]["turn/recall_all@5"] == [0.0, 0.0, 0.0]
    # Each mechanism's own effect: all on minus all on but it, on both asks.
    for m in MECHANISMS:
        for ask in repeat[f"ablation.no_{m}"].values():
            assert set(ask["mechanism"]) == set(DELTA_METRICS)
    assert "mechanism" not in repeat["feedback"]["repeat"]
    # The default flags' feedback pass: the gold turn enters the top 5 on the second ask.
    assert repeat["feedback"]["first"]["summary"]["all"]["turn/recall_all@5"] == 0.0
    assert repeat["feedback"]["repeat"]["summary"]["all"]["turn/recall_all@5"] == 1.0
    assert repeat["feedback"]["repeat"]["vs_read_only"]["turn/recall_all@5"][0] == 1.0
    assert result["info"]["repeat_hours"] == 12.0
    report = (out / "longmemeval.md").read_text(encoding="utf-8")
    assert "Second ask, 12 h later" in report
    assert "| ablation.no_fsrs |" in report
    assert "| reconsolidation |" in report  # the mechanism table


def test_feedback_passes_refuse_http(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--http", "http://127.0.0.1:1", "--feedback"])
    assert "in process only" in capsys.readouterr().err
