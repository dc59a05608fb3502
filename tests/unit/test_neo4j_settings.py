"""WW_NEO4J_* settings and the record store they select (no Neo4j needed: the driver
connects only in ``open()``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.neo4j_launcher import free_port
from ww.config import ConfigError, load_settings
from ww.storage import SQLiteRecordStore, StoreUnavailableError, build_stores
from ww.storage.factory import build_entity_stores, build_skill_stores
from ww.storage.neo4j.records import Neo4jRecordStore
from ww.storage.neo4j.vectors import Neo4jVectorIndex

NEO4J_VARS = ("URI", "USER", "PASSWORD", "POOL_SIZE", "DATABASE")


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)  # no stray .env
    for name in NEO4J_VARS:
        monkeypatch.delenv(f"WW_NEO4J_{name}", raising=False)
    monkeypatch.setenv("WW_DATA_DIR", str(tmp_path / "data"))


def test_defaults_keep_the_embedded_record_store() -> None:
    s = load_settings()
    assert (s.neo4j_uri, s.neo4j_user, s.neo4j_password) == (None, "neo4j", None)
    assert (s.neo4j_pool_size, s.neo4j_database) == (50, "neo4j")
    records, _ = build_stores(s)
    assert isinstance(records, SQLiteRecordStore)


def test_reads_every_neo4j_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    env = {
        "URI": "neo4j+s://db.internal:7687",
        "USER": "ww",
        "PASSWORD": "s3cret",
        "POOL_SIZE": "100",
        "DATABASE": "memories",
    }
    for k, v in env.items():
        monkeypatch.setenv(f"WW_NEO4J_{k}", v)
    s = load_settings()
    assert (s.neo4j_uri, s.neo4j_user, s.neo4j_pool_size, s.neo4j_database) == (
        "neo4j+s://db.internal:7687",
        "ww",
        100,
        "memories",
    )
    assert s.neo4j_password is not None
    assert s.neo4j_password.get_secret_value() == "s3cret"
    assert "s3cret" not in repr(s)
    records, _ = build_stores(s)
    assert isinstance(records, Neo4jRecordStore)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("URI", "http://127.0.0.1:7474"),
        ("URI", "127.0.0.1:7687"),
        ("POOL_SIZE", "0"),
        ("POOL_SIZE", "many"),
        ("USER", ""),
        ("DATABASE", ""),
        ("VECTOR_INDEX_THRESHOLD", "-1"),
        ("VECTOR_OVERSAMPLE", "0"),
    ],
)
def test_invalid_value_names_the_variable(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    monkeypatch.setenv(f"WW_NEO4J_{name}", value)
    with pytest.raises(ConfigError, match=f"WW_NEO4J_{name}"):
        load_settings()


def test_neo4j_vector_backend_builds_one_label_per_memory_type(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("WW_NEO4J_URI", "bolt://127.0.0.1:7687")
    monkeypatch.setenv("WW_VECTOR_BACKEND", "neo4j")
    s = load_settings()
    records, vectors = build_stores(s)
    indexes = [vectors, build_entity_stores(s, records)[1], build_skill_stores(s, records)[1]]
    assert all(isinstance(i, Neo4jVectorIndex) for i in indexes)
    labels = [i.label for i in indexes if isinstance(i, Neo4jVectorIndex)]
    assert labels == ["WwVecEpisode", "WwVecEntity", "WwVecSkill"]
    assert vectors.dimension == s.embedding_dimension
    assert all(
        (i.index_threshold, i.oversample) == (1000, 4)
        for i in indexes
        if isinstance(i, Neo4jVectorIndex)
    )
    # The data dir is not touched: nothing of this tier is embedded.
    assert not s.data_dir.exists()


def test_vector_index_settings_reach_every_index(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WW_NEO4J_URI", "bolt://127.0.0.1:7687")
    monkeypatch.setenv("WW_VECTOR_BACKEND", "neo4j")
    monkeypatch.setenv("WW_NEO4J_VECTOR_INDEX_THRESHOLD", "0")
    monkeypatch.setenv("WW_NEO4J_VECTOR_OVERSAMPLE", "9")
    s = load_settings()
    records, vectors = build_stores(s)
    indexes = [vectors, build_entity_stores(s, records)[1], build_skill_stores(s, records)[1]]
    assert [
        (i.index_threshold, i.oversample) for i in indexes if isinstance(i, Neo4jVectorIndex)
    ] == [(0, 9)] * 3


async def test_neo4j_vectors_without_a_database_are_unavailable() -> None:
    index = Neo4jVectorIndex(f"bolt://127.0.0.1:{free_port()}", 8, connect_timeout=1.0)
    with pytest.raises(StoreUnavailableError, match="neo4j"):
        await index.open()
    with pytest.raises(StoreUnavailableError, match="closed"):
        await index.check()
    with pytest.raises(StoreUnavailableError, match="closed"):
        await index.unindexed()
