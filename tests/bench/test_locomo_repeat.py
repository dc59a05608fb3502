"""The LoCoMo bench's repeated-question pass on a tiny file in LoCoMo's layout."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bench.locomo import _parser, run
from tests.bench.haystack import GOLD_TEXT, NEAR_MISSES, QUESTION, RAINY


def _conversation() -> dict[str, Any]:
    texts = [*NEAR_MISSES[:6], GOLD_TEXT, RAINY, *NEAR_MISSES[6:]]
    turns = [{"speaker": "Ann", "dia_id": f"D1:{i + 1}", "text": t} for i, t in enumerate(texts)]
    gold = f"D1:{texts.index(GOLD_TEXT) + 1}"
    return {
        "sample_id": "conv-1",
        "conversation": {"session_1": turns, "session_1_date_time": "1:56 pm on 8 May, 2023"},
        "qa": [{"question": QUESTION, "category": 4, "evidence": [gold]}],
    }


def test_repeat_pass_scores_the_second_ask(tmp_path: Path) -> None:
    data = tmp_path / "locomo.json"
    data.write_text(json.dumps([_conversation()]), encoding="utf-8")
    out = tmp_path / "out"
    args = ["--data", str(data), "--out", str(out), "--repeat-hours", "24"]
    result = run(_parser().parse_args(args))
    ww = result["ww"]
    assert set(ww) == {"read_only", "learning", "feedback", "feedback.repeat"}
    # One question: feedback has no later question to help, only its own second ask, where
    # the gold turn comes up from sixth into the top 5.
    assert ww["read_only"]["all"]["recall@5"] == 0.0
    assert ww["feedback"]["all"]["recall@5"] == 0.0
    assert ww["feedback.repeat"]["all"]["recall@5"] == 1.0
    assert ww["feedback.repeat"]["all"]["mrr"] > ww["read_only"]["all"]["mrr"]
    assert len(result["vs_read_only"]["feedback.repeat"]["all"]) == 3
    assert "| feedback.repeat |" in (out / "locomo.md").read_text(encoding="utf-8")
