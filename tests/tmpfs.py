"""A small tmpfs for tests of a full disk: mounted for the test, always unmounted after.

Mounting needs root (CI runs as root). Where it is not allowed the test is skipped with
the reason, except under ``CI``, where a skipped disk-full test would hide a regression:
there it fails.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

__all__ = ["fill_to", "free_mb", "tmpfs"]

MB = 1024 * 1024


@contextmanager
def tmpfs(path: Path, size_mb: int) -> Iterator[Path]:
    path.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size_mb}m", "tmpfs", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        problem = f"cannot mount a tmpfs for the disk-full test (needs root): {done.stderr.strip()}"
        if os.environ.get("CI"):
            pytest.fail(problem, pytrace=False)
        pytest.skip(problem)
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def free_mb(path: Path) -> float:
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize / MB


def fill_to(filler: Path, leave_mb: float) -> None:
    """Grow (or shrink) ``filler`` until its file system has ``leave_mb`` free."""
    have = filler.stat().st_size if filler.exists() else 0
    target = max(0, have + int((free_mb(filler.parent) - leave_mb) * MB))
    if target < have:
        os.truncate(filler, target)
        return
    chunk = b"\1" * MB  # not zeros: tmpfs must really store every page
    with filler.open("ab", buffering=0) as f:
        size = have
        while size < target:
            try:
                size += f.write(chunk[: target - size])
            except OSError:  # the disk is full: as full as asked
                break
