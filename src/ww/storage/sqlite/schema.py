"""Versioned schema of the SQLite record store.

Each migration runs once, in order, inside one transaction, and bumps ``user_version``; a
database written by a newer release is refused rather than guessed at.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Callable

__all__ = ["MIGRATIONS", "SCHEMA_VERSION", "Migration", "migrate"]

_EPISODE_FTS = re.compile(r"fts_[0-9a-f]{32}")  # the old per-session tables' names


def _drop_episode_fts(conn: sqlite3.Connection) -> None:
    names = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
    for name in names:
        if _EPISODE_FTS.fullmatch(name):  # its shadow tables go with it
            conn.execute(f"DROP TABLE IF EXISTS {name}")


# A migration is a script, or a function for a change whose statements depend on the data.
Migration = str | Callable[[sqlite3.Connection], None]

# The review state and access statistics of a memory (``ACCESS_COLUMNS``), as migrations 1
# and 2 created them for episodes and entities.
_REVIEW = """stability REAL NOT NULL,
        difficulty REAL NOT NULL,
        last_review INTEGER NOT NULL,
        reps INTEGER NOT NULL,
        lapses INTEGER NOT NULL,
        access_count INTEGER NOT NULL,
        last_accessed INTEGER,"""

MIGRATIONS: tuple[Migration, ...] = (
    # 1: meta, sessions, episodes
    f"""
    CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    CREATE TABLE sessions (
        session_id TEXT PRIMARY KEY,
        created_at INTEGER NOT NULL,
        last_activity INTEGER
    );
    CREATE TABLE episodes (
        rowid INTEGER PRIMARY KEY,
        id TEXT NOT NULL UNIQUE,
        session_id TEXT NOT NULL,
        content TEXT NOT NULL,
        timestamp INTEGER NOT NULL,
        ingested_at INTEGER NOT NULL,
        speaker TEXT,
        source TEXT,
        project TEXT,
        context TEXT NOT NULL,
        metadata TEXT NOT NULL,
        external_id TEXT,
        outcome TEXT NOT NULL,
        importance REAL NOT NULL,
        {_REVIEW}
        value REAL NOT NULL,
        archived INTEGER NOT NULL,
        index_state TEXT NOT NULL
    );
    CREATE INDEX ix_episodes_session_time ON episodes (session_id, timestamp DESC, id DESC);
    CREATE INDEX ix_episodes_pending ON episodes (session_id) WHERE index_state = 'pending';
    CREATE INDEX ix_episodes_external ON episodes (session_id, external_id);
    """,
    # 2: entities (bi-temporal versions), relations, skills with versions and executions, and
    # the access times ACT-R's base level needs. Keyword indexes are per session and kind
    # (sqlite/memfts.py).
    f"""
    CREATE TABLE entities (
        rowid INTEGER PRIMARY KEY,
        id TEXT NOT NULL UNIQUE,
        session_id TEXT NOT NULL,
        lineage_id TEXT NOT NULL,
        version INTEGER NOT NULL,
        name TEXT NOT NULL,
        entity_type TEXT NOT NULL,
        summary TEXT NOT NULL,
        details TEXT NOT NULL,
        source TEXT,
        valid_from INTEGER NOT NULL,
        valid_to INTEGER,
        created_at INTEGER NOT NULL,
        {_REVIEW}
        index_state TEXT NOT NULL
    );
    CREATE INDEX ix_entities_session ON entities (session_id, valid_from DESC, id DESC);
    CREATE INDEX ix_entities_lineage ON entities (session_id, lineage_id, version);
    CREATE INDEX ix_entities_pending ON entities (session_id) WHERE index_state = 'pending';
    CREATE TABLE relations (
        id TEXT PRIMARY KEY,
        session_id TEXT NOT NULL,
        source_id TEXT NOT NULL REFERENCES entities (id) ON DELETE CASCADE,
        target_id TEXT NOT NULL REFERENCES entities (id) ON DELETE CASCADE,
        relation_type TEXT NOT NULL,
        weight REAL NOT NULL,
        created_at INTEGER NOT NULL,
        last_strengthened INTEGER NOT NULL,
        valid_from INTEGER NOT NULL,
        valid_to INTEGER,
        UNIQUE (source_id, target_id, relation_type)
    );
    CREATE INDEX ix_relations_target ON relations (target_id);
    CREATE TABLE skills (
        rowid INTEGER PRIMARY KEY,
        id TEXT NOT NULL UNIQUE,
        session_id TEXT NOT NULL,
        name TEXT NOT NULL,
        domain TEXT NOT NULL,
        task TEXT NOT NULL,
        trigger_pattern TEXT,
        steps TEXT NOT NULL,
        script TEXT NOT NULL,
        script_generated INTEGER NOT NULL,
        successes INTEGER NOT NULL,
        failures INTEGER NOT NULL,
        execution_count INTEGER NOT NULL,
        last_executed INTEGER,
        version INTEGER NOT NULL,
        deprecated INTEGER NOT NULL,
        replaced_by TEXT,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL,
        access_count INTEGER NOT NULL,
        last_accessed INTEGER,
        index_state TEXT NOT NULL
    );
    CREATE INDEX ix_skills_session ON skills (session_id, created_at DESC, id DESC);
    CREATE INDEX ix_skills_domain ON skills (session_id, domain);
    CREATE INDEX ix_skills_pending ON skills (session_id) WHERE index_state = 'pending';
    CREATE TABLE skill_versions (
        skill_id TEXT NOT NULL REFERENCES skills (id) ON DELETE CASCADE,
        version INTEGER NOT NULL,
        replaced_at INTEGER NOT NULL,
        snapshot TEXT NOT NULL,
        PRIMARY KEY (skill_id, version)
    );
    CREATE TABLE skill_executions (
        id TEXT PRIMARY KEY,
        skill_id TEXT NOT NULL REFERENCES skills (id) ON DELETE CASCADE,
        session_id TEXT NOT NULL,
        skill_version INTEGER NOT NULL,
        success INTEGER NOT NULL,
        duration_ms REAL NOT NULL,
        failed_step INTEGER,
        error TEXT,
        executed_at INTEGER NOT NULL
    );
    CREATE INDEX ix_skill_executions ON skill_executions (skill_id, executed_at DESC);
    CREATE TABLE access_log (
        session_id TEXT NOT NULL,
        memory_id TEXT NOT NULL,
        at INTEGER NOT NULL
    );
    CREATE INDEX ix_access_log ON access_log (memory_id, at DESC);
    CREATE INDEX ix_access_log_session ON access_log (session_id);
    """,
    # 3: learning state (sqlite/learning.py): recall log, feedback, accesses, values, Hebbian
    # edges, FF encoder weights
    """
    CREATE TABLE recall_log (
        recall_id TEXT PRIMARY KEY,
        session_id TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        query_vector BLOB NOT NULL,
        memory_ids TEXT NOT NULL
    );
    CREATE INDEX ix_recall_log_session_time ON recall_log (session_id, created_at);
    CREATE TABLE recall_feedback (
        recall_id TEXT NOT NULL,
        memory_id TEXT NOT NULL,
        session_id TEXT NOT NULL,
        reward REAL NOT NULL,
        result TEXT NOT NULL,
        PRIMARY KEY (recall_id, memory_id)
    );
    CREATE INDEX ix_recall_feedback_session ON recall_feedback (session_id);
    CREATE TABLE memory_access (
        session_id TEXT NOT NULL,
        memory_id TEXT NOT NULL,
        t INTEGER NOT NULL
    );
    CREATE INDEX ix_memory_access ON memory_access (session_id, memory_id, t);
    CREATE TABLE memory_value (
        session_id TEXT NOT NULL,
        memory_id TEXT NOT NULL,
        value REAL NOT NULL,
        rewards INTEGER NOT NULL,
        PRIMARY KEY (session_id, memory_id)
    );
    CREATE TABLE hebbian_edges (
        session_id TEXT NOT NULL,
        a TEXT NOT NULL,
        b TEXT NOT NULL,
        weight REAL NOT NULL,
        last_strengthened INTEGER NOT NULL,
        PRIMARY KEY (session_id, a, b)
    );
    CREATE INDEX ix_hebbian_edges_b ON hebbian_edges (session_id, b);
    CREATE TABLE ff_encoders (
        session_id TEXT PRIMARY KEY,
        version INTEGER NOT NULL,
        weights BLOB NOT NULL
    );
    """,
    # 4: consolidation. Episodes are not entities (relations reference entities on both
    # ends), so links from episodes to the entities they were consolidated into, and from a
    # near-duplicate episode to the one it duplicates, live in memory_links. A consolidated
    # entity's membership hash and capsule confidence live beside it. last_decayed lets
    # Hebbian decay run twice without decaying the same interval twice.
    """
    CREATE TABLE memory_links (
        session_id TEXT NOT NULL,
        source_id TEXT NOT NULL,
        target_id TEXT NOT NULL,
        link_type TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        PRIMARY KEY (session_id, source_id, target_id, link_type)
    );
    CREATE INDEX ix_memory_links_target ON memory_links (session_id, target_id);
    CREATE TABLE consolidated_entities (
        entity_id TEXT PRIMARY KEY REFERENCES entities (id) ON DELETE CASCADE,
        session_id TEXT NOT NULL,
        members_hash TEXT NOT NULL,
        members INTEGER NOT NULL,
        confidence REAL NOT NULL,
        updated_at INTEGER NOT NULL
    );
    CREATE INDEX ix_consolidated_session ON consolidated_entities (session_id);
    ALTER TABLE relations ADD COLUMN last_decayed INTEGER;
    """,
    # 5: episodes' keyword indexes live in memory (sqlite/keyword_index.py), built from the
    # episodes table; the per-session FTS5 tables that held them go.
    _drop_episode_fts,
    # 6: skills get FSRS state, reviewed by recall and feedback as entities' is. A skill
    # stored before starts as it would have when created (``Skill``'s default state: the
    # default stability and difficulty, last reviewed at its creation).
    """
    ALTER TABLE skills ADD COLUMN stability REAL NOT NULL DEFAULT 1.0;
    ALTER TABLE skills ADD COLUMN difficulty REAL NOT NULL DEFAULT 5.0;
    ALTER TABLE skills ADD COLUMN last_review INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE skills ADD COLUMN reps INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE skills ADD COLUMN lapses INTEGER NOT NULL DEFAULT 0;
    UPDATE skills SET last_review = created_at;
    """,
    # 7: the answers of writes sent with an Idempotency-Key (sqlite/idempotency.py), per
    # session and key; status is NULL while the key is reserved by a request in flight.
    """
    CREATE TABLE idempotency_keys (
        session_id TEXT NOT NULL,
        key TEXT NOT NULL,
        fingerprint TEXT NOT NULL,
        token TEXT NOT NULL,
        at INTEGER NOT NULL,
        status INTEGER,
        body TEXT,
        PRIMARY KEY (session_id, key)
    );
    CREATE INDEX ix_idempotency_at ON idempotency_keys (at);
    """,
    # 8: the control plane (sqlite/control.py): one row of state (the change counter and the
    # emergency level), the flags set at run time, and the audit of every change, whose id
    # is the counter's value after that change.
    """
    CREATE TABLE control_state (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        version INTEGER NOT NULL,
        level TEXT NOT NULL,
        reason TEXT,
        at INTEGER,
        by TEXT
    );
    INSERT INTO control_state (id, version, level) VALUES (1, 0, 'NONE');
    CREATE TABLE control_flags (
        name TEXT PRIMARY KEY,
        enabled INTEGER NOT NULL
    );
    CREATE TABLE control_audit (
        id INTEGER PRIMARY KEY,
        at INTEGER NOT NULL,
        who TEXT NOT NULL,
        kind TEXT NOT NULL,
        name TEXT NOT NULL,
        old TEXT NOT NULL,
        new TEXT NOT NULL,
        reason TEXT
    );
    """,
    # 9: recall reads the feedback its candidates got (the query-tied value, ranking's
    # ``query_feedback``): by memory, not only by recall.
    """
    CREATE INDEX ix_recall_feedback_memory ON recall_feedback (session_id, memory_id);
    """,
)

SCHEMA_VERSION = len(MIGRATIONS)


def migrate(conn: sqlite3.Connection) -> int:
    """Bring the schema up to ``SCHEMA_VERSION``; return the version found before."""
    found = int(conn.execute("PRAGMA user_version").fetchone()[0])
    if found > SCHEMA_VERSION:
        raise RuntimeError(
            f"database schema version {found} is newer than this release supports "
            f"({SCHEMA_VERSION}); upgrade World Weaver"
        )
    for version in range(found + 1, SCHEMA_VERSION + 1):
        step = MIGRATIONS[version - 1]
        conn.execute("BEGIN IMMEDIATE")
        try:
            if isinstance(step, str):
                for statement in _statements(step):
                    conn.execute(statement)
            else:
                step(conn)
            conn.execute(f"PRAGMA user_version = {version}")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
    return found


def _statements(script: str) -> list[str]:
    # sqlite3.complete_statement tells where a statement (triggers included) really ends.
    out: list[str] = []
    buf = ""
    for line in script.splitlines(keepends=True):
        buf += line
        if sqlite3.complete_statement(buf):
            out.append(buf.strip())
            buf = ""
    if buf.strip():
        out.append(buf.strip())
    return out
