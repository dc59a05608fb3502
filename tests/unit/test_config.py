from __future__ import annotations

import logging
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ww.config import (
    ConfigError,
    Environment,
    VectorBackend,
    known_env_names,
    load_settings,
    unknown_env_names,
)


def test_defaults(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)  # no stray .env
    s = load_settings()
    assert (s.api_host, s.api_port, s.api_workers) == ("127.0.0.1", 8765, 1)
    assert s.session_id == "default"
    assert s.embedding_model == "all-MiniLM-L6-v2-int8"
    assert s.embedding_dimension == 384
    assert (s.fsrs_default_stability, s.fsrs_retention_target) == (1.0, 0.9)
    assert s.hebbian_learning_rate == 0.1
    assert s.environment is Environment.DEVELOPMENT


def test_reads_every_guide_variable(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    env = {
        "WW_SESSION_ID": "production",
        "WW_API_HOST": "0.0.0.0",
        "WW_API_PORT": "9000",
        "WW_EMBEDDING_MODEL": "BAAI/bge-m3",
        "WW_EMBEDDING_DIMENSION": "1024",
        "WW_EMBEDDING_DEVICE": "cuda:0",
        "WW_EMBEDDING_BATCH_SIZE": "16",
        "WW_EMBEDDING_CACHE_SIZE": "500",
        "WW_EMBEDDING_USE_FP16": "true",
        "WW_FSRS_DEFAULT_STABILITY": "2.5",
        "WW_FSRS_RETENTION_TARGET": "0.85",
        "WW_HEBBIAN_LEARNING_RATE": "0.2",
        "WW_ENVIRONMENT": "staging",
        "WW_DATA_DIR": str(tmp_path / "d"),
    }
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    s = load_settings()
    assert s.session_id == "production"
    assert (s.api_host, s.api_port) == ("0.0.0.0", 9000)
    assert (s.embedding_model, s.embedding_dimension, s.embedding_device) == (
        "BAAI/bge-m3",
        1024,
        "cuda:0",
    )
    assert (s.embedding_batch_size, s.embedding_cache_size, s.embedding_use_fp16) == (16, 500, True)
    assert (s.fsrs_default_stability, s.fsrs_retention_target) == (2.5, 0.85)
    assert s.hebbian_learning_rate == 0.2
    assert s.environment is Environment.STAGING
    assert s.data_dir == tmp_path / "d"


def test_dotenv_file_is_read(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text("WW_API_PORT=9123\nWW_SESSION_ID=from-dotenv\n")
    s = load_settings()
    assert (s.api_port, s.session_id) == (9123, "from-dotenv")


@pytest.mark.parametrize(
    ("var", "value", "fragment"),
    [
        ("WW_API_WORKERS", "33", "less than or equal to 32"),
        ("WW_API_WORKERS", "0", "greater than or equal to 1"),
        ("WW_API_PORT", "70000", "65535"),
        ("WW_FSRS_RETENTION_TARGET", "1.5", "less than 1"),
        ("WW_HEBBIAN_LEARNING_RATE", "-1", "greater than 0"),
        ("WW_EMBEDDING_DEVICE", "tpu", "pattern"),
        ("WW_SESSION_ID", "bad id", "pattern"),
        ("WW_ENVIRONMENT", "prod", "development"),
        ("WW_EMBEDDING_BATCH_SIZE", "lots", "integer"),
        ("WW_RECALL_CANDIDATES", "5", "greater than or equal to 10"),
    ],
)
def test_invalid_value_names_variable_and_range(
    monkeypatch: pytest.MonkeyPatch, var: str, value: str, fragment: str
) -> None:
    monkeypatch.setenv(var, value)
    with pytest.raises(ConfigError) as info:
        load_settings()
    message = str(info.value)
    assert var in message
    assert fragment in message


def test_many_workers_need_server_backends(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WW_API_WORKERS", "4")
    with pytest.raises(ConfigError, match=r"WW_API_WORKERS=4.*single-process.*WW_NEO4J_URI"):
        load_settings()


def test_qdrant_url_alone_keeps_one_worker(monkeypatch: pytest.MonkeyPatch) -> None:
    # SQLite + Qdrant server is a valid mix, but SQLite is still single-process.
    monkeypatch.setenv("WW_API_WORKERS", "4")
    monkeypatch.setenv("WW_QDRANT_URL", "http://127.0.0.1:6333")
    with pytest.raises(ConfigError, match="single-process"):
        load_settings()


def test_server_tier_allows_many_workers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WW_API_WORKERS", "4")
    monkeypatch.setenv("WW_QDRANT_URL", "http://127.0.0.1:6333")
    monkeypatch.setenv("WW_NEO4J_URI", "bolt://127.0.0.1:7687")
    s = load_settings()
    assert s.uses_server_backends
    assert s.api_workers == 4


def test_qdrant_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    s = load_settings()
    assert (s.qdrant_url, s.qdrant_api_key) == (None, None)
    assert (s.qdrant_hnsw_m, s.qdrant_hnsw_ef_construct, s.qdrant_on_disk) == (16, 100, False)
    for k, v in {
        "WW_QDRANT_URL": "http://qdrant:6333",
        "WW_QDRANT_API_KEY": "k" * 32,
        "WW_QDRANT_HNSW_M": "32",
        "WW_QDRANT_HNSW_EF_CONSTRUCT": "256",
        "WW_QDRANT_ON_DISK": "true",
    }.items():
        monkeypatch.setenv(k, v)
    s = load_settings()
    assert s.qdrant_url == "http://qdrant:6333"
    assert s.qdrant_api_key is not None
    assert s.qdrant_api_key.get_secret_value() == "k" * 32
    assert "k" * 32 not in repr(s)  # a secret never reaches a log line
    assert (s.qdrant_hnsw_m, s.qdrant_hnsw_ef_construct, s.qdrant_on_disk) == (32, 256, True)


@pytest.mark.parametrize(
    ("var", "value"),
    [
        ("WW_QDRANT_URL", ":memory:"),  # local mode is for tests, not a deployment
        ("WW_QDRANT_URL", "qdrant:6333"),
        ("WW_QDRANT_HNSW_M", "2"),
        ("WW_QDRANT_HNSW_EF_CONSTRUCT", "0"),
    ],
)
def test_invalid_qdrant_values(monkeypatch: pytest.MonkeyPatch, var: str, value: str) -> None:
    monkeypatch.setenv(var, value)
    with pytest.raises(ConfigError, match=var):
        load_settings()


def test_vector_backend_auto_follows_qdrant_url(monkeypatch: pytest.MonkeyPatch) -> None:
    s = load_settings()
    assert (s.vector_backend, s.vector_store) == (VectorBackend.AUTO, VectorBackend.EDGE)
    monkeypatch.setenv("WW_QDRANT_URL", "http://127.0.0.1:6333")
    assert load_settings().vector_store is VectorBackend.QDRANT
    # Named explicitly, Edge stays in use even with a Qdrant URL in the environment.
    monkeypatch.setenv("WW_VECTOR_BACKEND", "edge")
    assert load_settings().vector_store is VectorBackend.EDGE


@pytest.mark.parametrize(
    ("value", "needs"), [("qdrant", "WW_QDRANT_URL"), ("neo4j", "WW_NEO4J_URI")]
)
def test_vector_backend_needs_its_address(
    monkeypatch: pytest.MonkeyPatch, value: str, needs: str
) -> None:
    monkeypatch.setenv("WW_VECTOR_BACKEND", value)
    with pytest.raises(ConfigError, match=rf"WW_VECTOR_BACKEND='{value}' needs {needs}"):
        load_settings()


def test_unknown_vector_backend_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WW_VECTOR_BACKEND", "milvus")
    with pytest.raises(ConfigError, match=r"WW_VECTOR_BACKEND='milvus'.*'neo4j'"):
        load_settings()


def test_neo4j_vectors_allow_many_workers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WW_API_WORKERS", "4")
    monkeypatch.setenv("WW_NEO4J_URI", "bolt://127.0.0.1:7687")
    monkeypatch.setenv("WW_VECTOR_BACKEND", "neo4j")
    s = load_settings()
    assert (s.vector_store, s.uses_server_backends, s.api_workers) == (
        VectorBackend.NEO4J,
        True,
        4,
    )


def test_neo4j_records_with_edge_vectors_keep_one_worker(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WW_API_WORKERS", "4")
    monkeypatch.setenv("WW_NEO4J_URI", "bolt://127.0.0.1:7687")
    with pytest.raises(ConfigError, match=r"single-process.*WW_VECTOR_BACKEND=neo4j"):
        load_settings()


# -- unknown WW_* names and WW_ENVIRONMENT ----------------------------------------------------


def _warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "ww.config"]


def test_unknown_names_warn_with_the_closest_known_name(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text("WW_FLAG_FSRSS=true\nWW_SESSION_ID=ok\n")
    monkeypatch.setenv("WW_API_PROT", "9000")
    monkeypatch.setenv("WW_API_PORT", "9001")
    monkeypatch.setenv("WW_API_KEY", "a" * 16)  # else its absence is warned about too
    monkeypatch.setenv("WW_TEST_SOMETHING", "tooling")  # the test tooling's prefix
    with caplog.at_level(logging.WARNING, logger="ww.config"):
        s = load_settings()
    assert s.api_port == 9001
    assert sorted(_warnings(caplog)) == [
        "WW_API_PROT is not a World Weaver setting and does nothing (did you mean WW_API_PORT?)",
        "WW_FLAG_FSRSS is not a World Weaver setting and does nothing (did you mean WW_FLAG_FSRS?)",
    ]


def test_guide_variables_not_built_yet_say_what_is_missing(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.chdir(tmp_path)
    # Every guide variable is built now: a stand-in keeps the mechanism tested for the next.
    monkeypatch.setattr(
        "ww.config.NOT_BUILT", {"WW_GUIDE_EXTRA_ENDPOINT": "no traces are exported"}
    )
    monkeypatch.setenv("WW_GUIDE_EXTRA_ENDPOINT", "http://user:secret-key-value@127.0.0.1")
    monkeypatch.setenv("WW_ZZZZZZZZ", "1")
    monkeypatch.setenv("WW_API_KEY", "a" * 16)
    with caplog.at_level(logging.WARNING, logger="ww.config"):
        load_settings()
    got = _warnings(caplog)
    assert any(
        m.startswith("WW_GUIDE_EXTRA_ENDPOINT is in the deployment guide but not built yet")
        and "no traces are exported" in m
        for m in got
    )
    assert "WW_ZZZZZZZZ is not a World Weaver setting and does nothing " in got[-1]
    assert all("secret-key-value" not in m for m in got)  # values never reach the log


API_KEY = "ww_a-key-long-enough-for-production-00"


def test_production_refuses_unknown_names(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text("WW_ENVIRONMENT=production\nWW_FLAG_FSRSS=true\n")
    monkeypatch.setenv("WW_API_PROT", "9000")
    monkeypatch.setenv("WW_API_KEY", API_KEY)
    with pytest.raises(ConfigError) as info:
        load_settings()
    message = str(info.value)
    assert message.startswith("refusing to start with WW_ENVIRONMENT=production")
    assert "WW_API_PROT" in message and "WW_API_PORT?" in message
    assert "WW_FLAG_FSRSS" in message and "WW_FLAG_FSRS?" in message
    monkeypatch.delenv("WW_API_PROT")
    (tmp_path / ".env").write_text("WW_ENVIRONMENT=production\nWW_FLAG_FSRS=true\n")
    assert load_settings().environment is Environment.PRODUCTION


def test_env_file_none_reads_no_dotenv_names(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text("WW_API_PROT=1\n")
    monkeypatch.setenv("WW_ENVIRONMENT", "production")
    monkeypatch.setenv("WW_API_KEY", "a" * 16)
    with pytest.raises(ConfigError, match="WW_API_PROT"):
        load_settings()
    assert load_settings(_env_file=None).environment is Environment.PRODUCTION


@settings(max_examples=60, deadline=None)
@given(
    known=st.sampled_from(sorted(known_env_names())),
    suffix=st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_", min_size=1, max_size=12),
)
def test_every_known_name_passes_and_every_other_is_reported(known: str, suffix: str) -> None:
    other = known + suffix
    unknown = unknown_env_names({known: "1", other: "1", known.lower(): "1"})
    if other in known_env_names() or other.startswith("WW_TEST_"):
        assert unknown == {}
    else:
        assert list(unknown) == [other]
        assert unknown[other] in known_env_names()  # a known name is always close enough here


SERVER_TIER = {"WW_NEO4J_URI": "bolt://127.0.0.1:7687", "WW_QDRANT_URL": "http://127.0.0.1:6333"}
# A server-tier production configuration that passes every check.
GOOD = {
    **SERVER_TIER,
    "WW_NEO4J_PASSWORD": "n" * 16,
    "WW_QDRANT_API_KEY": "q" * 16,
    "WW_API_KEY": "a" * 16,
}


@pytest.mark.parametrize(
    ("change", "refused"),
    [
        ({}, []),
        (
            {"WW_NEO4J_PASSWORD": None, "WW_QDRANT_API_KEY": ""},
            ["WW_NEO4J_PASSWORD", "WW_QDRANT_API_KEY"],
        ),
        ({"WW_NEO4J_PASSWORD": "tiny-pw"}, ["WW_NEO4J_PASSWORD is shorter than 16"]),
        ({"WW_API_KEY": None}, ["no API key: set WW_API_KEY"]),
        # Each key of the list is checked by ww.api.auth when it builds the keys.
        ({"WW_API_KEY": None, "WW_API_KEYS": '[{"id": "a", "key": "' + "k" * 16 + '"}]'}, []),
        ({"WW_API_KEY": "a" * 15}, ["WW_API_KEY is shorter than 16"]),
        ({"WW_ADMIN_KEY": "a" * 15}, ["WW_ADMIN_KEY is shorter than 16"]),
        ({"WW_QDRANT_API_KEY": "k"}, ["WW_QDRANT_API_KEY is shorter than 16"]),
        ({"WW_NEO4J_PASSWORD": "<secure-password>"}, ["WW_NEO4J_PASSWORD is a well-known default"]),
        ({"WW_API_CORS_ORIGINS": "https://a.example,*"}, ["WW_API_CORS_ORIGINS must not hold"]),
        ({"WW_API_CORS_ORIGINS": '["https://*.example"]'}, ["WW_API_CORS_ORIGINS must not hold"]),
        ({"WW_API_CORS_ORIGINS": "https://a.example"}, []),
        ({"WW_JWT_SECRET": "j" * 31}, ["WW_JWT_SECRET is shorter than 32 bytes"]),
        ({"WW_JWT_SECRET": "é" * 16}, []),  # 32 bytes in UTF-8
    ],
)
def test_each_production_finding_refuses_and_warns_elsewhere(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    change: dict[str, str | None],
    refused: list[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    for k, v in {**GOOD, **change}.items():
        if v is not None:
            monkeypatch.setenv(k, v)
    # Outside production: the same findings as warnings.
    for env in ("development", "staging"):
        monkeypatch.setenv("WW_ENVIRONMENT", env)
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="ww.config"):
            load_settings()
        warned = _warnings(caplog)
        assert len(warned) == len(refused)
        assert all(any(name in m for m in warned) for name in refused)
    monkeypatch.setenv("WW_ENVIRONMENT", "production")
    if not refused:
        assert load_settings().environment is Environment.PRODUCTION
        return
    with pytest.raises(ConfigError) as info:
        load_settings()
    message = str(info.value)
    assert message.startswith("refusing to start with WW_ENVIRONMENT=production")
    assert all(name in message for name in refused)
    for value in change.values():  # a value is never quoted
        if value and "*" not in value:
            assert value not in message


@pytest.mark.parametrize(
    "key",
    [
        {"WW_API_KEY": API_KEY},
        {"WW_API_KEYS": '[{"id": "a", "key": "' + API_KEY + '"}]'},
        {"WW_API_KEYS_FILE": "keys.json"},
    ],
)
def test_production_refuses_to_start_without_an_api_key(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, key: dict[str, str]
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("WW_ENVIRONMENT", "production")
    # An admin key or a JWT secret alone leaves nothing for the agents' own calls.
    monkeypatch.setenv("WW_ADMIN_KEY", "ww_admin-" + "x" * 32)
    monkeypatch.setenv("WW_JWT_SECRET", "s" * 32)
    with pytest.raises(ConfigError, match="no API key: set WW_API_KEY"):
        load_settings()
    for name, value in key.items():
        monkeypatch.setenv(name, value)
    assert load_settings().environment is Environment.PRODUCTION
