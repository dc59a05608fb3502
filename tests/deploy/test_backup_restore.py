"""``scripts/backup.sh --api`` and ``scripts/restore.sh --api`` run for real against a
running server: memories stored with the SDK, backed up, wiped, restored, and each one
comes back the same (id, content, every field) and recall ranks them as before.

The embedded tier loses its whole data directory between backup and restore (a new server
on an empty one), both through the API and as an offline copy of the data directory
(``--data-dir``, the service stopped); the server tier (the test Neo4j,
``WW_VECTOR_BACKEND=neo4j``) is wiped by ``restore.sh --wipe`` on the running server.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import shutil
import subprocess
import sys
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.deploy.rendering import ROOT
from tests.e2e.conftest import Server
from tests.neo4j_launcher import Neo4jProcess, wipe_database
from ww.sdk import WorldWeaver
from ww.storage.ports import StoreUnavailableError
from ww.storage.sqlite.db import LOCK_SUFFIX, SQLiteDatabase

API_KEY = "ww_backup-test-user-key-0123456789"
ADMIN_KEY = "ww_backup-test-admin-key-0123456789"
DATE = "20260102"
SESSIONS = ("alpha", "beta")
QUERIES = ("the disk was full", "rotate the keys", "who owns the database")


def script(
    name: str, *args: str, url: str, backup_dir: Path, **extra_env: str
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WW_")}
    env.update(
        extra_env,
        WW_API_URL=url,
        WW_ADMIN_KEY=ADMIN_KEY,
        BACKUP_DIR=str(backup_dir),
        DATE=DATE,
        PYTHON=sys.executable,
        PYTHONPATH=str(ROOT / "src"),
    )
    return subprocess.run(
        [str(ROOT / "scripts" / name), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def store(url: str) -> None:
    """Episodes, entities, a relation and skills in two sessions."""
    for n, session in enumerate(SESSIONS):
        with WorldWeaver(url, api_key=API_KEY, session_id=session) as ww:
            ww.episodes.create(content=f"{session}: the deploy failed because the disk was full")
            ww.episodes.create(content=f"{session}: we rotate the keys every ninety days")
            ww.episodes.create(content=f"{session}: lunch was soup", importance=0.2 + n / 10)
            owner = ww.entities.create(name=f"Dana {session}", summary="owns the database")
            db = ww.entities.create(name=f"orders-db {session}", summary="the orders database")
            ww.entities.relate(owner.id, db.id, weight=0.9)
            ww.skills.create(
                name=f"rotate keys {session}",
                task="rotate the keys",
                steps=[{"order": 1, "action": "mint a new key"}, {"order": 2, "action": "retire"}],
            )


def snapshot(url: str) -> dict[str, Any]:
    """Every memory of every session, whole, and what recall ranks first for each query."""
    seen: dict[str, Any] = {}
    for session in SESSIONS:
        with WorldWeaver(url, api_key=API_KEY, session_id=session) as ww:
            seen[session] = {
                "episodes": sorted(
                    (e.model_dump(mode="json") for e in ww.episodes.list_all()),
                    key=lambda e: e["id"],
                ),
                "entities": sorted(
                    (e.model_dump(mode="json") for e in ww.entities.list_all()),
                    key=lambda e: e["id"],
                ),
                "relations": sorted(
                    (
                        r.model_dump(mode="json")
                        for e in ww.entities.list_all()
                        for r in ww.entities.relations(e.id).items
                    ),
                    key=lambda r: r["id"],
                ),
                "skills": sorted(
                    (s.model_dump(mode="json") for s in ww.skills.list_all()),
                    key=lambda s: s["id"],
                ),
                "recall": [
                    [h.episode.id for h in ww.episodes.recall(q, limit=3, learn=False).hits]
                    for q in QUERIES
                ],
            }
    return seen


def check_round_trip(before: dict[str, Any], after: dict[str, Any]) -> None:
    for session in SESSIONS:
        assert len(before[session]["episodes"]) == 3
        assert len(before[session]["entities"]) == 2
        assert len(before[session]["skills"]) == 1
        assert before[session]["relations"] and all(before[session]["recall"])
        assert after[session] == before[session], session


@pytest.fixture
def backup_dir(tmp_path: Path) -> Path:
    return tmp_path / "backups"


@pytest.fixture
def started() -> Iterator[list[Server]]:
    servers: list[Server] = []
    try:
        yield servers
    finally:
        for server in servers:
            server.cleanup()


def start(started: list[Server], data_dir: Path, log: Path, **env: str) -> Server:
    server = Server(data_dir, log)
    started.append(server)
    server.start(WW_API_KEY=API_KEY, WW_ADMIN_KEY=ADMIN_KEY, **env).wait_ready(timeout=120)
    return server


def backup(url: str, backup_dir: Path) -> Path:
    done = script("backup.sh", "--api", url=url, backup_dir=backup_dir)
    assert done.returncode == 0, done.stderr
    file = backup_dir / f"ww-{DATE}.jsonl"
    assert f"backup: export -> {file}" in done.stdout
    assert "episode=6" in done.stdout
    assert not list(backup_dir.glob("*.partial"))
    assert ADMIN_KEY not in done.stdout + done.stderr
    return file


def test_the_embedded_tier_comes_back_from_its_backup_on_an_empty_data_dir(
    tmp_path: Path, backup_dir: Path, started: list[Server]
) -> None:
    server = start(started, tmp_path / "data", tmp_path / "first.log")
    store(server.url)
    before = snapshot(server.url)
    backup(server.url, backup_dir)
    server.stop()
    shutil.rmtree(tmp_path / "data")  # the disaster: the data directory is gone

    fresh = start(started, tmp_path / "data", tmp_path / "second.log")
    assert snapshot(fresh.url)[SESSIONS[0]]["episodes"] == []
    done = script("restore.sh", "--api", DATE, url=fresh.url, backup_dir=backup_dir)
    assert done.returncode == 0, done.stderr
    assert "restore: import <-" in done.stdout and "episode=6" in done.stdout
    check_round_trip(before, snapshot(fresh.url))


def test_the_embedded_data_dir_comes_back_from_an_offline_copy(
    tmp_path: Path, backup_dir: Path, started: list[Server]
) -> None:
    data = tmp_path / "data"
    server = start(started, data, tmp_path / "first.log")
    store(server.url)
    before = snapshot(server.url)
    offline = {"url": server.url, "backup_dir": backup_dir, "WW_DATA_DIR": str(data)}

    # A running server holds the data directory: no copy of it is taken.
    busy = script("backup.sh", "--data-dir", **offline)
    assert busy.returncode == 1
    assert busy.stderr == f"backup: {data} is in use by a running World Weaver; stop it first\n"
    assert not backup_dir.exists() or list(backup_dir.iterdir()) == []

    server.stop()
    done = script("backup.sh", "--data-dir", **offline)
    assert done.returncode == 0, done.stderr
    file = backup_dir / f"data-{DATE}.tar.gz"
    assert done.stdout.startswith(f"backup: data dir {data} -> {file} (")
    assert list(backup_dir.iterdir()) == [file]
    shutil.rmtree(data)  # the disaster: the data directory is gone

    done = script("restore.sh", "--data-dir", DATE, **offline)
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"restore: data dir {data} <- {file}\n"
    restored = start(started, data, tmp_path / "second.log")
    # Neither replaces a data directory that holds memories, and never one in use.
    assert script("restore.sh", "--data-dir", DATE, **offline).stderr == (
        f"restore: {data} is not empty; --wipe replaces it\n"
    )
    busy = script("restore.sh", "--data-dir", "--wipe", DATE, **offline)
    assert busy.returncode == 1
    assert "is in use by a running World Weaver" in busy.stderr
    check_round_trip(before, snapshot(restored.url))

    # --wipe puts the backup in place of what was stored after it.
    with WorldWeaver(restored.url, api_key=API_KEY, session_id="alpha") as ww:
        ww.episodes.create(content="stored after the backup")
    restored.stop()
    done = script("restore.sh", "--data-dir", "--wipe", DATE, **offline)
    assert done.returncode == 0, done.stderr
    assert not (tmp_path / "data.restoring").exists()
    assert not (tmp_path / "data.replaced").exists()
    check_round_trip(before, snapshot(start(started, data, tmp_path / "third.log").url))


def test_the_server_tier_comes_back_from_its_backup_after_a_wipe(
    neo4j_server: Neo4jProcess, tmp_path: Path, backup_dir: Path, started: list[Server]
) -> None:
    wipe_database(neo4j_server.uri)
    try:
        server = start(
            started,
            tmp_path / "data",
            tmp_path / "server.log",
            WW_NEO4J_URI=neo4j_server.uri,
            WW_VECTOR_BACKEND="neo4j",
        )
        store(server.url)
        before = snapshot(server.url)
        backup(server.url, backup_dir)
        with WorldWeaver(server.url, api_key=API_KEY, session_id="alpha") as ww:
            late = ww.episodes.create(content="stored after the backup").id

        done = script("restore.sh", "--api", "--wipe", DATE, url=server.url, backup_dir=backup_dir)
        assert done.returncode == 0, done.stderr
        assert "restore: wiped session alpha" in done.stdout
        after = snapshot(server.url)
        assert late not in {e["id"] for e in after["alpha"]["episodes"]}
        check_round_trip(before, after)
    finally:
        wipe_database(neo4j_server.uri)


def test_an_open_sqlite_database_alone_keeps_its_data_dir_from_copy_and_restore(
    tmp_path: Path, backup_dir: Path
) -> None:
    """SQLite records without Qdrant Edge (WW_VECTOR_BACKEND=qdrant): no wal directory to
    lock, and still no copy is taken of, nor a restore made over, a live WAL database."""
    data = tmp_path / "data"
    offline = {"url": "http://127.0.0.1:9", "backup_dir": backup_dir, "WW_DATA_DIR": str(data)}

    async def while_open() -> tuple[int, int]:
        db = SQLiteDatabase(data / "ww.sqlite3")
        await db.open()
        try:
            await db.write(lambda c: c.execute("CREATE TABLE kept (x)"))
            assert not list(data.glob("vectors*"))
            backup_rc = script("backup.sh", "--data-dir", **offline).returncode
            restore = script("restore.sh", "--data-dir", "--wipe", DATE, **offline)
            assert "is in use by a running World Weaver" in restore.stderr
            return backup_rc, restore.returncode
        finally:
            await db.close()

    backup_dir.mkdir()
    with tarfile.open(backup_dir / f"data-{DATE}.tar.gz", "w:gz"):
        pass  # an empty copy: the lock refuses it before anything is replaced
    assert asyncio.run(while_open()) == (1, 1)
    assert (data / "ww.sqlite3").exists()

    done = script("backup.sh", "--data-dir", **offline)  # closed: the copy is taken
    assert done.returncode == 0, done.stderr


def test_the_database_does_not_open_while_a_backup_holds_its_data_dir(tmp_path: Path) -> None:
    (tmp_path / f"ww.sqlite3{LOCK_SUFFIX}").touch()
    with (tmp_path / f"ww.sqlite3{LOCK_SUFFIX}").open("rb") as held:
        fcntl.flock(held.fileno(), fcntl.LOCK_EX)  # what flock(1) in the scripts takes
        db = SQLiteDatabase(tmp_path / "ww.sqlite3")
        with pytest.raises(StoreUnavailableError, match="locked by a backup or restore"):
            asyncio.run(db.open())
        asyncio.run(db.close())
    db = SQLiteDatabase(tmp_path / "ww.sqlite3")
    asyncio.run(db.open())
    asyncio.run(db.close())


def test_restore_refuses_a_missing_backup_and_bad_usage(tmp_path: Path, backup_dir: Path) -> None:
    url = "http://127.0.0.1:9"  # never reached: both fail before any request
    missing = script("restore.sh", "--api", DATE, url=url, backup_dir=backup_dir)
    assert missing.returncode == 1
    assert f"ww-{DATE}.jsonl not found" in missing.stderr
    no_data = script("restore.sh", "--data-dir", DATE, url=url, backup_dir=backup_dir)
    assert no_data.returncode == 1
    assert f"data-{DATE}.tar.gz not found" in no_data.stderr
    empty = {"url": url, "backup_dir": backup_dir, "WW_DATA_DIR": str(tmp_path)}
    nothing = script("backup.sh", "--data-dir", **empty)
    assert (nothing.returncode, nothing.stderr) == (
        1,
        f"backup: {tmp_path} holds no World Weaver data\n",
    )
    bad = ((), ("--api",), ("--wipe", DATE), ("--bogus", DATE), ("--api", "--data-dir", DATE))
    for args in bad:
        assert script("restore.sh", *args, url=url, backup_dir=backup_dir).returncode == 2
    assert script("backup.sh", "--bogus", url=url, backup_dir=backup_dir).returncode == 2


def test_backup_fails_and_leaves_no_file_when_the_server_does_not_answer(
    backup_dir: Path,
) -> None:
    done = script("backup.sh", "--api", url="http://127.0.0.1:9", backup_dir=backup_dir)
    assert done.returncode != 0
    assert list(backup_dir.iterdir()) == []
