"""Skills stored before they had FSRS state open with the default state (schema 6)."""

from __future__ import annotations

import sqlite3
from datetime import timedelta
from pathlib import Path
from uuid import uuid4

from tests.factories import T0
from ww.engine.dynamics import Fsrs
from ww.models.procedural import SKILL_DEFAULT_DIFFICULTY, SKILL_DEFAULT_STABILITY
from ww.storage.factory import skill_store
from ww.storage.payload import to_micros
from ww.storage.ports.skills import SkillFilter
from ww.storage.sqlite.records import SQLiteRecordStore
from ww.storage.sqlite.schema import MIGRATIONS, SCHEMA_VERSION

_BEFORE = 5  # the schema version before skills had FSRS columns


def _old_database(path: Path, skill_id: str) -> None:
    """A data directory's database as the release before this one left it."""
    conn = sqlite3.connect(path, isolation_level=None)
    for step in MIGRATIONS[:_BEFORE]:
        if isinstance(step, str):
            conn.executescript(step)
        else:
            step(conn)
    conn.execute(f"PRAGMA user_version = {_BEFORE}")
    conn.execute(
        "INSERT INTO skills (id, session_id, name, domain, task, trigger_pattern, steps, "
        "script, script_generated, successes, failures, execution_count, last_executed, "
        "version, deprecated, replaced_by, created_at, updated_at, access_count, "
        "last_accessed, index_state) "
        "VALUES (?, 's1', 'deploy', 'ops', 'deploy the service', NULL, '[]', '1. build', 0, "
        "2, 1, 3, NULL, 2, 0, NULL, ?, ?, 4, ?, 'indexed')",
        (
            skill_id,
            to_micros(T0),
            to_micros(T0 + timedelta(hours=1)),
            to_micros(T0 + timedelta(hours=2)),
        ),
    )
    conn.close()


async def test_an_old_skill_opens_with_the_default_fsrs_state(tmp_path: Path) -> None:
    path = tmp_path / "ww.sqlite3"
    skill_id = str(uuid4())
    _old_database(path, skill_id)
    records = SQLiteRecordStore(path)
    await records.open()
    try:
        flt = SkillFilter(include_deprecated=True)
        skills = await skill_store(records).list_skills("s1", flt, 10, None)
    finally:
        await records.close()
    [skill] = skills.items
    assert str(skill.id) == skill_id
    # As it would have been at creation, reviewed never since.
    assert skill.fsrs == Fsrs().new_state(T0)
    assert (skill.successes, skill.failures, skill.access_count, skill.version) == (2, 1, 4, 2)
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    conn.close()


def test_the_defaults_are_a_new_memory_state() -> None:
    state = Fsrs().new_state(T0)
    assert (state.stability, state.difficulty) == (
        SKILL_DEFAULT_STABILITY,
        SKILL_DEFAULT_DIFFICULTY,
    )
