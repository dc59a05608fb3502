"""Key rotation on the running server: ``WW_API_KEYS_FILE`` rewritten, no restart.

The server's one process keeps running throughout (its pid is checked); the new key is an
argon2 entry, so its first check runs through the middleware's worker thread as well.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tests.e2e.conftest import Server
from ww.api.keys import argon2_entry, hash_key

pytestmark = pytest.mark.slow

KEY_A = "ww_Akey-rotation-e2e-0123456789abcdefgh"
KEY_B = "ww_Bkey-rotation-e2e-9876543210zyxwvuts"
WAIT_S = 15.0


def _until(what: str, done: Callable[[], bool], server: Server) -> None:
    deadline = time.monotonic() + WAIT_S
    while not done():
        if time.monotonic() > deadline:
            pytest.fail(f"{what} not seen within {WAIT_S:.0f} s:\n{server.log()[-3000:]}")
        time.sleep(0.1)


def test_rotating_the_keys_file_takes_effect_without_a_restart(
    tmp_path: Path, start_server: Callable[..., Server]
) -> None:
    keys = tmp_path / "keys.json"
    keys.write_text(json.dumps([{"id": "agent", "key_sha256": hash_key(KEY_A)}]))
    server = start_server(tmp_path / "data", WW_API_KEYS_FILE=str(keys))
    assert server.proc is not None
    pid = server.proc.pid

    with httpx.Client(base_url=server.url, timeout=30.0) as client:

        def status(key: str) -> int:
            return client.get("/api/v1/episodes", headers={"X-API-Key": key}).status_code

        assert (status(KEY_A), status(KEY_B)) == (200, 401)

        # Rotate: B replaces A, written to a new file moved over the old one (as a
        # deployment tool or a Kubernetes secret update does).
        fresh = tmp_path / "keys.json.new"
        fresh.write_text(json.dumps([{"id": "agent", **argon2_entry(KEY_B)}]))
        fresh.replace(keys)
        _until("A refused", lambda: status(KEY_A) == 401, server)
        assert status(KEY_B) == 200

        # A file that no longer parses: an error in the log, and B keeps working. The file
        # is looked at on requests, so requests keep coming while waiting.
        keys.write_text('[{"id": "agent", "key": ')
        _until(
            "the parse error",
            lambda: status(KEY_B) == 200 and "keeping the keys" in server.log(),
            server,
        )
        assert (status(KEY_A), status(KEY_B)) == (401, 200)

    assert server.proc.poll() is None and server.proc.pid == pid
    server.stop()
    log = server.log()
    assert "WW_API_KEYS_FILE changed: 1 keys loaded" in log
    assert KEY_A not in log and KEY_B not in log
