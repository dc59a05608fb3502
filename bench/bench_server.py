"""The server under test for bench/latency.py: ``python -m ww.api.server`` as a subprocess.

Also the benchmark's progress log (stderr, stamped with the load average) and a free
loopback port. Imported by bench/latency.py after it has put ``bench`` and ``ww`` on the path.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

__all__ = ["API", "ROOT", "Server", "free_port", "log"]

ROOT = Path(__file__).resolve().parents[1]
API = "/api/v1"
HEALTH_TIMEOUT_S = 300.0
STOP_TIMEOUT_S = 60.0


def log(msg: str) -> None:
    load = " ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"[{time.strftime('%H:%M:%S')} load {load}] {msg}", file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# -- the server under test --------------------------------------------------------------------
class Server:
    """``python -m ww.api.server`` on loopback; always ``stop()`` it (see ``running``)."""

    def __init__(
        self,
        data_dir: Path,
        workdir: Path,
        log_path: Path,
        extra_env: dict[str, str] | None = None,
        src: Path = ROOT / "src",
    ) -> None:
        self.data_dir = data_dir
        self.src = src  # the ww package to run (another tree's, to compare against it)
        self.extra_env = dict(extra_env or {})
        self.workdir = workdir
        self.log_path = log_path
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self) -> float:
        """Start and wait for health 200; returns seconds from spawn to the first 200.

        A restart keeps the port, so clients of the first start reach the second."""
        self.port = self.port or free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("WW_")}
        env.update(
            WW_DATA_DIR=str(self.data_dir),
            WW_API_HOST="127.0.0.1",
            WW_API_PORT=str(self.port),
            PYTHONUNBUFFERED="1",
            # A benchmark measures the service at full speed, not the limiter's 100 a minute
            # (bench/auth_overhead.py measures the limiter itself); extra_env may set it.
            WW_FLAG_API_RATE_LIMITING="false",
        )
        env.update(self.extra_env)
        env["PYTHONPATH"] = os.pathsep.join([str(self.src), *filter(None, [env.get("PYTHONPATH")])])
        logf = self.log_path.open("ab")
        t0 = time.perf_counter()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "ww.api.server"],
            cwd=self.workdir,
            env=env,
            stdout=logf,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        logf.close()
        deadline = t0 + HEALTH_TIMEOUT_S
        with httpx.Client(base_url=self.base_url, timeout=5.0, trust_env=False) as c:
            while time.perf_counter() < deadline:
                if self.proc.poll() is not None:
                    raise RuntimeError(
                        f"server exited with {self.proc.returncode}:\n{self.log_tail()}"
                    )
                try:
                    if c.get(f"{API}/health").status_code == 200:
                        return time.perf_counter() - t0
                except httpx.TransportError:
                    pass
                time.sleep(0.05)
        raise TimeoutError(f"server not healthy after {HEALTH_TIMEOUT_S}s:\n{self.log_tail()}")

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            log(f"server {proc.pid} ignored SIGTERM for {STOP_TIMEOUT_S}s; killing it")
            proc.kill()
            proc.wait(timeout=STOP_TIMEOUT_S)

    def memory_mb(self) -> dict[str, float]:
        """Peak (VmHWM) and current (VmRSS) resident memory of the server process."""
        out: dict[str, float] = {}
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
                key, _, value = line.partition(":")
                if key in ("VmHWM", "VmRSS"):
                    out[key] = round(int(value.split()[0]) / 1024, 1)
        return out

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])
