"""Settings read from ``WW_*`` environment variables (and an optional ``.env`` file).

Every name here is part of the public contract set by the deployment guide; an invalid
value stops start-up with a message naming the variable and what it accepts. A ``WW_*`` name
that no setting reads (a typo, or a guide variable not built yet) is reported with the closest
known name: a warning, or a refusal to start with ``WW_ENVIRONMENT=production``.

``WW_ENVIRONMENT`` changes only these start-up checks:

- ``development`` (default), ``test`` and ``staging``: unknown names, and the findings of the
  production checks below, are logged as warnings.
- ``production``: unknown names, and each finding of the deployment guide's production
  checklist, stop start-up: no API key; a key, password or secret under 16 characters; a
  well-known Neo4j password; a Neo4j without a password; a Qdrant server without an API key;
  ``*`` in ``WW_API_CORS_ORIGINS``; a JWT secret under 32 bytes.

Passwords, keys and secrets are read through ``WW_SECRETS_BACKEND`` (``ww.secrets``) and
never shown: they are ``SecretStr`` and an invalid one is reported without its value.
"""

from __future__ import annotations

import difflib
import json
import logging
import os
from collections.abc import Iterable, Mapping
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from ww.secrets import DEFAULT_SECRETS_DIR, SECRET_FIELDS, SecretsBackend, SecretsSource

__all__ = [
    "CLIENT_ENV_NAMES",
    "LOG_LEVELS",
    "ConfigError",
    "Environment",
    "LogFormat",
    "LogLevel",
    "RateLimiterBackend",
    "RedisDownPolicy",
    "SecretsBackend",
    "Settings",
    "VectorBackend",
    "env_config",
    "known_env_names",
    "load_settings",
    "unknown_env_names",
]

logger = logging.getLogger(__name__)

SESSION_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:\-]{0,127}$"
# What redis-py's from_url reads: TCP, TLS and a Unix socket.
REDIS_SCHEMES = ("redis://", "rediss://", "unix://")


def env_config(prefix: str, *, frozen: bool = False) -> SettingsConfigDict:
    """How settings and flags are read: ``<prefix><NAME>`` from the environment or ``.env``,
    defaults validated too. Unknown names are ignored here and reported by
    ``load_settings``, with the closest known name."""
    return SettingsConfigDict(
        env_prefix=prefix,
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        validate_default=True,
        frozen=frozen,
    )


class Environment(StrEnum):
    DEVELOPMENT = "development"
    TEST = "test"
    STAGING = "staging"
    PRODUCTION = "production"


class VectorBackend(StrEnum):
    """Where the vectors live (``WW_VECTOR_BACKEND``)."""

    AUTO = "auto"  # a Qdrant server when WW_QDRANT_URL is set, else Qdrant Edge
    EDGE = "edge"  # Qdrant Edge in WW_DATA_DIR (one process)
    QDRANT = "qdrant"  # a Qdrant server at WW_QDRANT_URL
    NEO4J = "neo4j"  # nodes in the Neo4j at WW_NEO4J_URI, searched by exact scan


class RateLimiterBackend(StrEnum):
    """Where request counts live (``WW_RATE_LIMITER_BACKEND``)."""

    MEMORY = "memory"  # in each worker process: WW_API_WORKERS=4 allows 4 x WW_RATE_LIMIT
    REDIS = "redis"  # in the Redis at WW_REDIS_URL, shared by every worker and host


class LogFormat(StrEnum):
    TEXT = "text"  # one human-readable line per record
    JSON = "json"  # one JSON object per line, for a log shipper (ww.logs)


# The least severe record written (``WW_LOG_LEVEL``, any case).
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
LogLevel = Annotated[
    Literal["DEBUG", "INFO", "WARNING", "ERROR"],
    BeforeValidator(lambda v: v.upper() if isinstance(v, str) else v),
]


class RedisDownPolicy(StrEnum):
    """What the Redis rate limiter does while Redis cannot be reached."""

    OPEN = "open"  # serve every request, unlimited
    CLOSED = "closed"  # refuse every limited request with 503


def _default_data_dir() -> Path:
    return Path.home() / ".local" / "share" / "world-weaver"


class Settings(BaseSettings):
    """World Weaver configuration. Field ``foo_bar`` is read from ``WW_FOO_BAR``."""

    model_config = env_config("WW_")

    environment: Environment = Environment.DEVELOPMENT
    session_id: str = Field("default", pattern=SESSION_ID_PATTERN)
    data_dir: Path = Field(default_factory=_default_data_dir)
    # Below this much free space in data_dir's file system the embedded stores refuse
    # writes (507) before Qdrant Edge's memory-mapped files can hit a SIGBUS; 0 disables.
    min_free_disk_mb: int = Field(256, ge=0, le=1024 * 1024)
    # Sessions whose in-memory keyword index the embedded tier keeps (least recently used
    # forgotten first, rebuilt from SQLite at its next search): bounds RAM under a workload
    # that writes to ever more sessions.
    keyword_index_sessions: int = Field(1000, ge=1, le=10_000_000)

    api_host: str = Field("127.0.0.1", min_length=1)
    api_port: int = Field(8765, ge=1, le=65535)
    api_workers: int = Field(1, ge=1, le=32)
    # -- observability (docs/operations.md, Monitoring) ----------------------------------
    # /metrics without a credential (for a scraper inside a trusted network); off, it takes
    # any valid key, as a user route does.
    metrics_public: bool = False
    log_format: LogFormat = LogFormat.TEXT
    log_level: LogLevel = "INFO"
    # OpenTelemetry traces (ww.tracing; extra `otel`), exported while the runtime flag
    # `telemetry` is on too. The protocol is OTLP over gRPC (port 4317) or HTTP (4318).
    otel_enabled: bool = False
    otel_endpoint: str = Field("http://127.0.0.1:4317", pattern=r"^https?://\S+$")
    otel_protocol: Literal["grpc", "http"] = "grpc"
    api_max_body_bytes: int = Field(10 * 1024 * 1024, ge=1024, le=512 * 1024 * 1024)
    # How long the answer to a write sent with an Idempotency-Key is kept for its retries.
    idempotency_ttl_hours: float = Field(24.0, gt=0.0, le=24.0 * 365)
    # Seconds a client may take to send a request's headers, or to send the next piece of
    # its body, before the connection is closed (408 once the headers are in).
    api_request_timeout: float = Field(15.0, gt=0.0, le=3600.0)
    # Open connections one worker process serves at once; a request on one more gets 503.
    api_max_connections: int = Field(1000, ge=1, le=100_000)
    # Origins a browser may call the API from (comma-separated or a JSON list); empty = no
    # CORS headers, so browsers keep to same-origin.
    api_cors_origins: Annotated[list[str], NoDecode] = Field(default_factory=list)
    # -- secrets (ww.secrets): every SecretStr below is read through this backend ----------
    secrets_backend: SecretsBackend = SecretsBackend.AUTO
    secrets_dir: Path = DEFAULT_SECRETS_DIR

    embedding_model: str = Field("all-MiniLM-L6-v2-int8", min_length=1)
    embedding_dimension: int = Field(384, ge=8, le=8192)
    embedding_device: str = Field("cpu", pattern=r"^(cpu|cuda(:\d+)?)$")
    embedding_batch_size: int = Field(32, ge=1, le=1024)
    embedding_cache_size: int = Field(1000, ge=0, le=1_000_000)
    embedding_use_fp16: bool = False
    embedding_max_length: int | None = Field(None, ge=8, le=8192)
    embedding_max_parts: int = Field(default=256, ge=1, le=4096)
    # Word pieces per window of a memory longer than the model sees whole (docs/architecture.md,
    # "Long memories: parts"): shorter windows match a one-sentence fact better and cost more
    # vectors per memory. Changing it re-windows memories as they are written again. A text
    # that would need more than ``embedding_max_parts`` windows gets wider ones (up to the
    # model's max length), so it stays covered with a bounded write.
    embedding_window_length: int = Field(64, ge=8, le=8192)

    fsrs_default_stability: float = Field(1.0, gt=0.0, le=36500.0)
    fsrs_retention_target: float = Field(0.9, gt=0.5, lt=1.0)
    hebbian_learning_rate: float = Field(0.1, gt=0.0, le=1.0)

    recall_candidates: int = Field(50, ge=10, le=2000)

    # -- server tier: Qdrant server (and the Neo4j names the compose files set) -------------
    vector_backend: VectorBackend = VectorBackend.AUTO
    # Unset WW_QDRANT_URL keeps the embedded Qdrant Edge index under WW_DATA_DIR.
    qdrant_url: str | None = Field(None, pattern=r"^https?://\S+$")
    qdrant_api_key: SecretStr | None = None
    qdrant_timeout_s: float = Field(10.0, gt=0.0, le=600.0)
    # HNSW graph of a new collection: edges per node, build-time beam, and whether its
    # vectors, graph and payload live on disk (memory-mapped) instead of in RAM.
    qdrant_hnsw_m: int = Field(16, ge=4, le=128)
    qdrant_hnsw_ef_construct: int = Field(100, ge=4, le=4096)
    qdrant_on_disk: bool = False
    # -- learning dynamics (feedback, ACT-R, Hebbian, lability, FF encoder) ----------------
    lability_window_hours: float = Field(6.0, gt=0.0, le=8760.0)
    value_learning_rate: float = Field(0.3, gt=0.0, le=1.0)
    eligibility_tau_hours: float = Field(6.0, gt=0.0, le=8760.0)
    actr_decay: float = Field(0.5, gt=0.0, le=2.0)
    actr_max_accesses: int = Field(32, ge=1, le=1024)
    hebbian_co_retrieval_top: int = Field(5, ge=0, le=100)
    hebbian_decay_tau_days: float = Field(30.0, gt=0.0, le=36500.0)
    reconsolidation_rate: float = Field(0.1, ge=0.0, le=1.0)
    reconsolidation_max_step: float = Field(0.05, ge=0.0, le=1.0)
    ff_learning_rate: float = Field(0.05, gt=0.0, le=1.0)
    recall_log_retention_days: float = Field(30.0, gt=0.0, le=36500.0)
    # The query-tied value (flag query_feedback): a past rating counts for a new query above
    # this cosine between the two queries, fully for the same query; the memory's own value
    # weighs as this many ratings against them.
    query_feedback_similarity: float = Field(0.9, ge=0.0, lt=1.0)
    query_feedback_prior: float = Field(1.0, gt=0.0, le=1000.0)
    # -- consolidation (issue 4) ------------------------------------------------------------
    # Seconds between in-process consolidation passes over every session; 0 = off.
    consolidation_interval: float = Field(0.0, ge=0.0, le=30 * 86_400.0)
    # Server tier: a set WW_NEO4J_URI puts the records in Neo4j instead of SQLite.
    neo4j_uri: str | None = Field(None, pattern=r"^(bolt|neo4j)(\+s|\+ssc)?://.+")
    neo4j_user: str = Field("neo4j", min_length=1)
    neo4j_password: SecretStr | None = None
    neo4j_pool_size: int = Field(50, ge=1, le=1000)
    neo4j_database: str = Field("neo4j", min_length=1)
    # WW_VECTOR_BACKEND=neo4j: a session with this many vectors of one memory type gets its
    # own HNSW vector index (smaller ones are scanned exactly; 0 = always scan), which is
    # asked for oversample x the hits wanted before the filters and the exact score run.
    neo4j_vector_index_threshold: int = Field(1000, ge=0, le=100_000_000)
    neo4j_vector_oversample: int = Field(4, ge=1, le=100)
    # -- circuit breakers (issue 14; ww.control.circuits) -------------------------------------
    # Consecutive failures of a dependency (the database, the vector index, the embedder,
    # Redis) that open its circuit; seconds it then answers 503 at once before one trial
    # call may go through.
    circuit_failure_threshold: int = Field(5, ge=1, le=1000)
    circuit_reset_timeout: float = Field(30.0, gt=0.0, le=86_400.0)

    # -- authentication (issue 14; ww.api.auth) ---------------------------------------------
    # One user key for every session; WW_API_KEYS (a JSON list) and WW_API_KEYS_FILE add keys
    # bound to sessions and roles (the file is read again when it changes: ww.api.auth).
    # Any of these, WW_ADMIN_KEY or WW_JWT_SECRET turns auth on.
    api_key: SecretStr | None = None
    api_keys: SecretStr | None = None
    api_keys_file: Path | None = None
    admin_key: SecretStr | None = None
    jwt_secret: SecretStr | None = None
    jwt_issuer: str | None = Field(None, min_length=1)
    jwt_audience: str | None = Field(None, min_length=1)
    # -- rate limiting (issue 14; ww.api.ratelimit, switched by the api_rate_limiting flag) --
    # Requests one caller (API key id, else client address) may make to one route group, in
    # the `limits` library's notation: "100/minute", "10 per second", "1000/hour".
    rate_limit: str = Field("100/minute", min_length=1)
    rate_limiter_backend: RateLimiterBackend = RateLimiterBackend.MEMORY
    # A secret: the URL may carry Redis's password (redis://:password@host:6379/0).
    redis_url: SecretStr | None = None
    rate_limit_redis_down: RedisDownPolicy = RedisDownPolicy.OPEN
    # Seconds between tries to reach a Redis that failed; requests in between get the
    # WW_RATE_LIMIT_REDIS_DOWN policy at once instead of waiting on a dead server.
    redis_retry_s: float = Field(5.0, ge=0.0, le=3600.0)
    # Seconds one Redis command (or connecting) may take before it counts as a failure.
    redis_timeout_s: float = Field(1.0, gt=0.0, le=60.0)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (SecretsSource(settings_cls, init_settings, env_settings, dotenv_settings),)

    @field_validator("data_dir", "secrets_dir")
    @classmethod
    def _expand(cls, v: Path) -> Path:
        return v.expanduser()

    @field_validator("api_cors_origins", mode="before")
    @classmethod
    def _origins(cls, v: Any) -> Any:
        """A JSON list, or names separated by commas (blanks dropped)."""
        if isinstance(v, str):
            text = v.strip()
            if text.startswith("["):
                return json.loads(text)
            return [part.strip() for part in text.split(",") if part.strip()]
        return v

    @field_validator("rate_limit")
    @classmethod
    def _rate_limit(cls, v: str) -> str:
        try:
            from limits import parse_many
        except ImportError:  # the api extra's: only the API reads the limit, and needs it
            return v

        try:
            items = parse_many(v)
        except ValueError:
            items = []
        if len(items) != 1:
            raise ValueError(
                "not one rate limit in the limits notation, e.g. 100/minute, 10 per second "
                "or 1000/hour"
            )
        return v

    @field_validator("redis_url")
    @classmethod
    def _redis_url(cls, v: SecretStr | None) -> SecretStr | None:
        # The message never quotes the URL: it may hold the password.
        if v is not None and not v.get_secret_value().startswith(REDIS_SCHEMES):
            raise ValueError(f"must start with one of {', '.join(REDIS_SCHEMES)}")
        return v

    @property
    def rate_limiter_redis_url(self) -> str | None:
        """The Redis URL the rate limiter uses, None for the in-memory backend.

        Raises ``ConfigError`` when ``WW_RATE_LIMITER_BACKEND=redis`` has no URL.
        """
        if self.rate_limiter_backend is RateLimiterBackend.MEMORY:
            return None
        if self.redis_url is None:
            raise ConfigError("WW_RATE_LIMITER_BACKEND='redis' needs WW_REDIS_URL")
        return self.redis_url.get_secret_value()

    @property
    def vector_store(self) -> VectorBackend:
        """The backend ``WW_VECTOR_BACKEND`` resolves to (never ``auto``).

        Raises ``ConfigError`` when the backend it names has no address configured.
        """
        backend = self.vector_backend
        if backend is VectorBackend.AUTO:
            return VectorBackend.EDGE if self.qdrant_url is None else VectorBackend.QDRANT
        if backend is VectorBackend.QDRANT and self.qdrant_url is None:
            raise ConfigError("WW_VECTOR_BACKEND='qdrant' needs WW_QDRANT_URL")
        if backend is VectorBackend.NEO4J and self.neo4j_uri is None:
            raise ConfigError("WW_VECTOR_BACKEND='neo4j' needs WW_NEO4J_URI")
        return backend

    @property
    def uses_server_backends(self) -> bool:
        """True only when no embedded store is in use, so several workers may share the data.

        SQLite + Qdrant server is a valid mix, but SQLite is single-process: the records
        need Neo4j (WW_NEO4J_URI) and the vectors a Qdrant server or Neo4j, since Qdrant
        Edge is single-process too.
        """
        return self.neo4j_uri is not None and self.vector_store is not VectorBackend.EDGE


class ConfigError(RuntimeError):
    """A configuration value is invalid; the message names the variable."""


def _describe(err: dict[str, Any]) -> str:
    loc = err.get("loc", ())
    field = ".".join(str(p) for p in loc)
    name = f"WW_{field.upper()}"
    # A secret is named, never quoted, even when it is the invalid value.
    got = "<hidden>" if loc[:1] and loc[0] in SECRET_FIELDS else repr(err.get("input"))
    return f"{name}={got}: {err.get('msg', 'invalid value')}"


# The test tooling's own variables (WW_TEST_NEO4J_JAR, ...), read by tests/ and never by the
# service: tolerated so that a developer's shell does not warn on every start.
TOLERATED_PREFIXES: tuple[str, ...] = ("WW_TEST_",)
# Variables the clients read and the server does not: the `ww` command line's server
# (docs/cli.md). Known, so a shell that sets one for `ww` does not warn when it also starts
# the server; documented in the README's client table, and never a setting's name.
CLIENT_ENV_NAMES: Mapping[str, str] = {
    "WW_API_URL": "the server the ww command line talks to",
}
# Deployment-guide variables this version does not build yet, and what their absence means;
# they are reported with that instead of a look-alike name.
# None at present; the mechanism stays for the next one.
NOT_BUILT: Mapping[str, str] = {}
# Shortest password, key or secret production accepts (the deployment guide's checklist).
MIN_PRODUCTION_PASSWORD = 16
# Shortest JWT signing secret, in UTF-8 bytes: HS256's key should be as long as its hash.
MIN_JWT_SECRET_BYTES = 32
# Neo4j's own initial password and the placeholders of the guide and common examples.
DEFAULT_NEO4J_PASSWORDS = frozenset(
    {"neo4j", "password", "changeme", "<secure-password>", "<same-password>", "test"}
)


def known_env_names() -> frozenset[str]:
    """Every ``WW_*`` name World Weaver reads: the settings, the feature flags and the
    clients' own (``CLIENT_ENV_NAMES``)."""
    from ww.control.flags import Flags  # here: flags imports ConfigError from this module

    return frozenset(
        [f"WW_{name.upper()}" for name in Settings.model_fields]
        + [f"WW_FLAG_{name.upper()}" for name in Flags.model_fields]
        + list(CLIENT_ENV_NAMES)
    )


def _env_files(env_file: Any) -> list[Path]:
    if env_file is None:
        return []
    files = [env_file] if isinstance(env_file, str | os.PathLike) else list(env_file)
    return [Path(f).expanduser() for f in files]


def _dotenv_names(env_file: Any) -> list[str]:
    """Names in the ``.env`` file(s) the settings read, resolved as they resolve them."""
    from dotenv import dotenv_values  # python-dotenv: pydantic-settings reads .env with it

    encoding = Settings.model_config.get("env_file_encoding")
    names: list[str] = []
    for path in _env_files(env_file):
        if path.is_file():
            names.extend(dotenv_values(path, encoding=encoding))
    return names


def unknown_env_names(
    environ: Mapping[str, str], dotenv_names: Iterable[str] = ()
) -> dict[str, str | None]:
    """Each ``WW_*`` name no setting reads, with the closest known name (or None).

    Names are compared upper-cased, as the settings read them case-insensitively.
    """
    known = known_env_names()
    out: dict[str, str | None] = {}
    for name in [*environ, *dotenv_names]:
        upper = name.upper()
        if not upper.startswith("WW_") or upper in known or upper.startswith(TOLERATED_PREFIXES):
            continue
        close = difflib.get_close_matches(upper, known, n=1)
        out[name] = close[0] if close else None
    return out


def _unknown_line(name: str, closest: str | None) -> str:
    missing = NOT_BUILT.get(name.upper())
    if missing is not None:
        return f"{name} is in the deployment guide but not built yet and does nothing: {missing}"
    hint = f"did you mean {closest}?" if closest else "no setting has a similar name"
    return f"{name} is not a World Weaver setting and does nothing ({hint})"


def _secret(settings: Settings, field: str) -> str | None:
    """The value of a secret setting, None when unset or empty (looked up by name, so the
    checks below follow the SECRET_FIELDS list)."""
    value = getattr(settings, field, None)
    text = value.get_secret_value() if isinstance(value, SecretStr) else None
    return text or None


def _production_problems(settings: Settings) -> list[str]:
    """What the deployment guide's production checklist asks for and these settings lack.

    Each line names the variable and the fix, never the value.
    """
    fix = "e.g. `openssl rand -hex 32`"
    problems: list[str] = []
    if not (settings.api_key or settings.api_keys or settings.api_keys_file):
        problems.append(
            "no API key: set WW_API_KEY, WW_API_KEYS or WW_API_KEYS_FILE (every route but "
            f"/, health and the docs would be open), e.g. a random key ({fix})"
        )
    for field in SECRET_FIELDS:
        if field in ("api_keys", "redis_url"):
            # A JSON list, whose keys ww.api.auth checks in every environment; a URL.
            continue
        text = _secret(settings, field)
        if text is not None and len(text) < MIN_PRODUCTION_PASSWORD:
            problems.append(
                f"WW_{field.upper()} is shorter than {MIN_PRODUCTION_PASSWORD} characters: "
                f"use a random value ({fix})"
            )
    password = _secret(settings, "neo4j_password")
    if settings.neo4j_uri is not None and password is None:
        problems.append(
            f"WW_NEO4J_PASSWORD must hold at least {MIN_PRODUCTION_PASSWORD} characters "
            "(scripts/setup-env.sh writes a random one)"
        )
    if password is not None and password.lower() in DEFAULT_NEO4J_PASSWORDS:
        problems.append(
            "WW_NEO4J_PASSWORD is a well-known default: set a random one in Neo4j and here "
            "(scripts/setup-env.sh writes one)"
        )
    if (
        settings.vector_store is VectorBackend.QDRANT
        and _secret(settings, "qdrant_api_key") is None
    ):
        problems.append(
            "WW_QDRANT_URL needs WW_QDRANT_API_KEY (the Qdrant server's QDRANT__SERVICE__API_KEY)"
        )
    if any("*" in origin for origin in settings.api_cors_origins):
        problems.append(
            "WW_API_CORS_ORIGINS must not hold a wildcard (*): list the exact origins, "
            "e.g. https://app.example.com"
        )
    jwt = _secret(settings, "jwt_secret")
    if jwt is not None and len(jwt.encode()) < MIN_JWT_SECRET_BYTES:
        problems.append(
            f"WW_JWT_SECRET is shorter than {MIN_JWT_SECRET_BYTES} bytes: use a random one ({fix})"
        )
    return problems


def _check_environment(settings: Settings, unknown: Mapping[str, str | None]) -> None:
    """Warn about, or in production refuse, unknown names and an unprotected deployment."""
    lines = [_unknown_line(name, closest) for name, closest in unknown.items()]
    problems = _production_problems(settings)
    if settings.environment is Environment.PRODUCTION:
        refused = lines + problems
        if refused:
            raise ConfigError(
                "refusing to start with WW_ENVIRONMENT=production:\n  " + "\n  ".join(refused)
            )
        return
    for line in lines:
        logger.warning("%s", line)
    for problem in problems:
        logger.warning("WW_ENVIRONMENT=production would refuse this: %s", problem)


def load_settings(**overrides: Any) -> Settings:
    """Build settings from the environment, turning validation errors into one clear message.

    Also checks the environment's and ``.env``'s ``WW_*`` names and, with
    ``WW_ENVIRONMENT=production``, the guide's production checklist (see the module doc).
    """
    try:
        settings = Settings(**overrides)
    except ValidationError as exc:
        lines = [_describe(dict(e)) for e in exc.errors()]
        raise ConfigError("invalid configuration:\n  " + "\n  ".join(lines)) from None
    settings.vector_store  # noqa: B018 -- raises ConfigError for a backend with no address
    settings.rate_limiter_redis_url  # noqa: B018 -- the same for the Redis rate limiter
    if settings.api_workers > 1 and not settings.uses_server_backends:
        raise ConfigError(
            f"WW_API_WORKERS={settings.api_workers}: the embedded tier (SQLite + Qdrant Edge) "
            "is single-process; set WW_API_WORKERS=1, or configure the server tier "
            "(WW_NEO4J_URI, and WW_QDRANT_URL or WW_VECTOR_BACKEND=neo4j) to run several workers"
        )
    env_file = overrides.get("_env_file", Settings.model_config.get("env_file"))
    _check_environment(settings, unknown_env_names(os.environ, _dotenv_names(env_file)))
    return settings
