"""One worker of a pool runs the scheduled passes: an exclusive lock on a file elects it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from ww.engine.maintenance import HostLeader


def test_one_holder_at_a_time_and_the_next_takes_over(tmp_path: Path) -> None:
    path = tmp_path / "data" / "scheduler.lock"
    first, second = HostLeader(path), HostLeader(path)
    assert first() is True
    assert first() is True  # kept, not re-taken
    assert second() is False
    first.release()
    assert second() is True
    assert first() is False
    second.release()


def test_a_killed_holder_frees_the_lock(tmp_path: Path) -> None:
    path = tmp_path / "scheduler.lock"
    # Another process takes the lock and keeps it until killed, as a worker would.
    code = (
        "import sys; from pathlib import Path; from ww.engine.maintenance import HostLeader; "
        f"leader = HostLeader(Path({str(path)!r})); print(leader(), flush=True); sys.stdin.read()"
    )
    holder = subprocess.Popen(
        [sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "True"
        leader = HostLeader(path)
        assert leader() is False
    finally:
        holder.kill()
        holder.wait(30)
        for pipe in (holder.stdin, holder.stdout):
            if pipe is not None:
                pipe.close()
    assert leader() is True
    leader.release()
