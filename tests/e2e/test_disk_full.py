"""A full disk on the real server: the data directory on a small tmpfs is filled past
``WW_MIN_FREE_DISK_MB``. Writes get 507 and health says degraded while reads, recall and
deletes go on; freeing the space resumes writes; a restart without room refuses in one
line, and with room finds every acknowledged memory."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import httpx
import pytest

from tests.e2e.conftest import Server, free_port, server_cmd, server_env
from tests.tmpfs import fill_to, tmpfs

pytestmark = pytest.mark.slow

HEADERS = {"X-Session-ID": "e2e-disk"}
WATERMARK_MB = 16
# Three empty Qdrant Edge indexes take ~48 MB on tmpfs and grow by up to ~60 MB each on
# re-open; start-up asks for the watermark plus 64 MB per index.
TMPFS_MB = 400


def _create(client: httpx.Client, text: str) -> httpx.Response:
    return client.post("/api/v1/episodes", json={"content": text}, headers=HEADERS)


def test_full_disk_refuses_writes_and_keeps_serving(tmp_path: Path) -> None:
    with tmpfs(tmp_path / "mnt", TMPFS_MB) as mnt:
        data = mnt / "data"
        filler = mnt / "filler"
        env = {"WW_MIN_FREE_DISK_MB": str(WATERMARK_MB)}
        server = Server(data, tmp_path / "server.log")
        try:
            server.start(**env).wait_ready()
            with httpx.Client(base_url=server.url, timeout=30.0) as client:
                acked = [
                    _create(client, f"lantern {i} by the harbor").json()["id"] for i in range(5)
                ]
                fill_to(filler, WATERMARK_MB - 4)  # below the watermark, above the reserve
                time.sleep(1.2)  # the server's reading of the free space is cached for 1 s

                refused = _create(client, "glacier at dawn")
                assert refused.status_code == 507, refused.text
                err = refused.json()["error"]
                assert err["code"] == "insufficient_storage"
                assert f"WW_MIN_FREE_DISK_MB={WATERMARK_MB}" in err["message"]
                assert "glacier" not in err["message"]

                health = client.get("/api/v1/health")
                assert health.status_code == 200
                report = health.json()
                assert report["status"] == "degraded"
                disk = report["disk"]
                assert disk["writes"] == "refused" and disk["learning"] == "paused"
                assert disk["free_mb"] < WATERMARK_MB and disk["min_free_mb"] == WATERMARK_MB
                assert disk["last_write_error"]["code"] == "watermark"

                # Reads and recall (its learning skipped) go on.
                assert (
                    client.get(f"/api/v1/episodes/{acked[0]}", headers=HEADERS).status_code == 200
                )
                recall = client.post(
                    "/api/v1/episodes/recall", json={"query": "lantern harbor"}, headers=HEADERS
                )
                assert recall.status_code == 200, recall.text
                assert recall.json()["hits"]
                # Deletes free space: they go on down to the reserve.
                gone = client.delete(f"/api/v1/episodes/{acked[4]}", headers=HEADERS)
                assert gone.status_code == 204, gone.text
                kept = acked[:4]

                filler.unlink()
                # The cached reading is at most a second old.
                for _ in range(50):
                    resumed = _create(client, "orchard in bloom")
                    if resumed.status_code != 507:
                        break
                    time.sleep(0.1)
                assert resumed.status_code == 201, resumed.text
                kept.append(resumed.json()["id"])
                assert client.get("/api/v1/health").json()["status"] == "ok"
            server.stop()

            # A restart without room refuses in one line saying what it needs.
            fill_to(filler, WATERMARK_MB - 4)
            done = subprocess.run(
                server_cmd(),
                env=server_env(data, free_port(), **env),
                cwd=tmp_path,
                capture_output=True,
                text=True,
                timeout=120,
            )
            assert done.returncode == 2, done.stderr
            line = done.stderr.strip().splitlines()[-1]
            assert line.startswith("world-weaver: not enough free disk space in ")
            assert f"{WATERMARK_MB + 3 * 64} MB needed to start" in line

            filler.unlink()
            server = Server(data, tmp_path / "server-2.log")
            server.start(**env).wait_ready()
            with httpx.Client(base_url=server.url, timeout=30.0) as client:
                for memory_id in kept:
                    got = client.get(f"/api/v1/episodes/{memory_id}", headers=HEADERS)
                    assert got.status_code == 200, memory_id
                assert (
                    client.get(f"/api/v1/episodes/{acked[4]}", headers=HEADERS).status_code == 404
                )
            server.stop()
        finally:
            server.cleanup()
