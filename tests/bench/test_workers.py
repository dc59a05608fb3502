"""bench/workers.py's measuring parts: memory read from /proc, the supervisor's workers
told apart from its other children, and the ratios of its report."""

from __future__ import annotations

import multiprocessing
import os
import subprocess
import sys
import time
from typing import Any

from bench.workers import _add_ratios, markdown, process_memory, worker_pids


def test_process_memory_reads_this_process() -> None:
    mem = process_memory(os.getpid())
    assert set(mem) == {"VmRSS", "VmHWM", "Pss"}
    assert 0 < mem["Pss"] <= mem["VmRSS"] <= mem["VmHWM"]
    assert process_memory(2**22 + 1) == {}  # above pid_max's default: no such process


def test_worker_pids_are_the_spawned_children_only() -> None:
    spawned = multiprocessing.get_context("spawn").Process(target=time.sleep, args=(30,))
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    spawned.start()
    try:
        assert spawned.pid is not None
        deadline = time.monotonic() + 30
        while spawned.pid not in worker_pids(os.getpid()):  # its command line comes first
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert other.pid not in worker_pids(os.getpid())
    finally:
        spawned.terminate()
        spawned.join()
        other.kill()
        other.wait()
    assert worker_pids(2**22 + 1) == []


def _run(label: str, workers: int, ingest: float, recall: float) -> dict[str, Any]:
    return {
        "label": label,
        "workers": workers,
        "ingest": {"per_s": ingest, "failed": 0},
        "recall": {"per_s": recall, "failed": 1},
        "rss_per_worker_mb": 500.0,
        "peak_rss_per_worker_mb": 600.0,
        "pss_per_worker_mb": 450.0,
        "total_pss_mb": 450.0 * workers,
    }


def test_ratios_are_against_the_single_server_worker() -> None:
    runs = [
        _run("embedded-1", 1, 90, 40),
        _run("server-1", 1, 60, 20),
        _run("server-4", 4, 120, 50),
    ]
    _add_ratios(runs)
    assert runs[0]["ingest"]["vs_server_1"] == 1.5
    assert (runs[2]["ingest"]["vs_server_1"], runs[2]["ingest"]["per_worker_per_s"]) == (2.0, 30.0)
    assert runs[2]["recall"]["vs_server_1"] == 2.5
    assert runs[2]["recall"]["per_worker_per_s"] == 12.5
    report = {
        "info": {
            "date": "d",
            "cpu_count": 2,
            "platform": "p",
            "python": "3",
            "loadavg_start": [1.0],
            "loadavg_end": [2.0],
            "clients": 8,
            "duration_s": 10.0,
            "batch": 16,
        },
        "runs": runs,
    }
    assert "| server-4 | 4 | 120 (2.0) | 50 (2.5) | 500.0 | 600.0 | 450.0 | 1800.0 | 1 |" in (
        markdown(report)
    )
