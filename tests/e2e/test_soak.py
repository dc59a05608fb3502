"""A short run of bench/soak.py in the suite: a minute of mixed load across sessions with a
SIGKILL and restart half way, then every acknowledged write checked."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench import soak


@pytest.mark.slow
def test_a_minute_of_mixed_load_with_a_sigkill_loses_and_leaks_nothing(tmp_path: Path) -> None:
    args = ["--clients", "8", "--sessions", "4", "--duration", "60", "--kill-at", "30", "--out"]
    report = soak.main([*args, str(tmp_path)])
    verify = report["verify"]
    # The run did real work on both sides of the kill.
    assert report["chaos"]["killed_at_s"] == 30
    assert report["chaos"]["restart_s"] > 0
    assert verify["acknowledged_creates"] > 100 and verify["acknowledged_deletes"] > 0
    assert verify["recall_checked"] == min(soak.VERIFY_RECALLS, verify["acknowledged_creates"])
    # Nothing acknowledged is lost, changed or brought back, nothing crosses sessions, and
    # no request got a 5xx (a broken connection during the kill is not an answer).
    assert {k: verify[k] for k in ("lost", "wrong_content", "resurrected", "cross_session")} == {
        "lost": 0,
        "wrong_content": 0,
        "resurrected": 0,
        "cross_session": 0,
    }
    assert verify["not_recalled"] == 0
    assert report["server_errors_5xx"] == 0, report["server_error_samples"]
    assert report["ok"] is True
    assert json.loads((tmp_path / "soak.json").read_text())["verify"] == verify
    assert "| 0 | 0 | 0 | 0 |" in (tmp_path / "soak.md").read_text()
