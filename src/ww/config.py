"""Settings read from ``WW_*`` environment variables (and an optional ``.env`` file).

Every name here is part of the public contract set by the deployment guide; an invalid
value stops start-up with a message naming the variable and what it accepts.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Any

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["ConfigError", "Environment", "Settings", "load_settings"]

SESSION_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:\-]{0,127}$"


class Environment(StrEnum):
    DEVELOPMENT = "development"
    TEST = "test"
    STAGING = "staging"
    PRODUCTION = "production"


def _default_data_dir() -> Path:
    return Path.home() / ".local" / "share" / "world-weaver"


class Settings(BaseSettings):
    """World Weaver configuration. Field ``foo_bar`` is read from ``WW_FOO_BAR``."""

    model_config = SettingsConfigDict(
        env_prefix="WW_",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        validate_default=True,
    )

    environment: Environment = Environment.DEVELOPMENT
    session_id: str = Field("default", pattern=SESSION_ID_PATTERN)
    data_dir: Path = Field(default_factory=_default_data_dir)

    api_host: str = Field("127.0.0.1", min_length=1)
    api_port: int = Field(8765, ge=1, le=65535)
    api_workers: int = Field(1, ge=1, le=32)
    api_max_body_bytes: int = Field(10 * 1024 * 1024, ge=1024, le=512 * 1024 * 1024)

    embedding_model: str = Field("all-MiniLM-L6-v2-int8", min_length=1)
    embedding_dimension: int = Field(384, ge=8, le=8192)
    embedding_device: str = Field("cpu", pattern=r"^(cpu|cuda(:\d+)?)$")
    embedding_batch_size: int = Field(32, ge=1, le=1024)
    embedding_cache_size: int = Field(1000, ge=0, le=1_000_000)
    embedding_use_fp16: bool = False
    embedding_max_length: int | None = Field(None, ge=8, le=8192)

    fsrs_default_stability: float = Field(1.0, gt=0.0, le=36500.0)
    fsrs_retention_target: float = Field(0.9, gt=0.5, lt=1.0)
    hebbian_learning_rate: float = Field(0.1, gt=0.0, le=1.0)

    recall_candidates: int = Field(50, ge=10, le=2000)

    # Server tier: a set WW_NEO4J_URI puts the records in Neo4j instead of SQLite.
    neo4j_uri: str | None = Field(None, pattern=r"^(bolt|neo4j)(\+s|\+ssc)?://.+")
    neo4j_user: str = Field("neo4j", min_length=1)
    neo4j_password: SecretStr | None = None
    neo4j_pool_size: int = Field(50, ge=1, le=1000)
    neo4j_database: str = Field("neo4j", min_length=1)

    @field_validator("data_dir")
    @classmethod
    def _expand(cls, v: Path) -> Path:
        return v.expanduser()

    @property
    def uses_server_backends(self) -> bool:
        # The server tier arrives with the Neo4j/Qdrant backends; until then only the
        # embedded tier exists and it is single-process.
        return False


class ConfigError(RuntimeError):
    """A configuration value is invalid; the message names the variable."""


def _describe(err: dict[str, Any]) -> str:
    field = ".".join(str(p) for p in err.get("loc", ()))
    name = f"WW_{field.upper()}"
    got = err.get("input")
    return f"{name}={got!r}: {err.get('msg', 'invalid value')}"


def load_settings(**overrides: Any) -> Settings:
    """Build settings from the environment, turning validation errors into one clear message."""
    try:
        settings = Settings(**overrides)
    except ValidationError as exc:
        lines = [_describe(dict(e)) for e in exc.errors()]
        raise ConfigError("invalid configuration:\n  " + "\n  ".join(lines)) from None
    if settings.api_workers > 1 and not settings.uses_server_backends:
        raise ConfigError(
            f"WW_API_WORKERS={settings.api_workers}: the embedded tier (SQLite + Qdrant Edge) "
            "is single-process; set WW_API_WORKERS=1, or configure the server tier "
            "(WW_NEO4J_URI and WW_QDRANT_URL) to run several workers"
        )
    return settings
