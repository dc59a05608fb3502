"""Worker processes that do not outlive their supervisor.

uvicorn's multi-worker supervisor stops its workers when it is asked to stop, but a SIGKILL
gives it no chance: its workers would go on serving the port, orphaned, with nothing to
restart or stop them. ``die_with_parent`` makes the kernel send the calling worker SIGTERM
(uvicorn's graceful stop) when its parent dies: ``prctl(PR_SET_PDEATHSIG)`` on Linux, a
thread polling the parent's pid elsewhere. Linux sends the signal when the *thread* that
spawned the worker ends; uvicorn's supervisor spawns and respawns workers from its main
thread, which lives as long as the process.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import multiprocessing
import os
import signal
import sys
import threading
import time

__all__ = ["die_with_parent"]

_PR_SET_PDEATHSIG = 1
_POLL_S = 1.0


def die_with_parent(sig: signal.Signals = signal.SIGTERM) -> None:
    """Have ``sig`` sent to this process when its parent (the supervisor) dies.

    Call it in the worker's main thread: Linux ties the setting to the thread that made it.
    """
    parent = multiprocessing.parent_process()
    expected = parent.pid if parent is not None and parent.pid is not None else os.getppid()
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
        if libc.prctl(_PR_SET_PDEATHSIG, int(sig), 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
    else:
        threading.Thread(target=_watch, args=(expected, sig), daemon=True).start()
    # The parent may have died before the line above took effect: nobody would signal then.
    if os.getppid() != expected:
        os.kill(os.getpid(), sig)


def _watch(expected: int, sig: signal.Signals) -> None:
    while os.getppid() == expected:
        time.sleep(_POLL_S)
    os.kill(os.getpid(), sig)
