"""The deployment files, checked without a Docker engine (none runs on these machines).

What can be checked here is: the YAML loads; every ``WW_*`` name they set is a setting; ports,
health paths, image tags and extras agree with the code; secrets have no defaults; the shell
scripts parse; and ``scripts/setup-env.sh`` runs for real and writes a ``.env`` that the
settings load and the compose files can interpolate. Building the image and starting the
containers is not exercised (the README says so).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tomllib
from collections.abc import Iterator
from importlib.metadata import version
from importlib.util import find_spec
from pathlib import Path
from typing import Any

import pytest
import yaml

from ww.api.routers.system import router as system_router
from ww.config import Settings, known_env_names, load_settings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
COMPOSE_FULL = ROOT / "docker-compose.full.yml"
DOCKERFILE = ROOT / "Dockerfile"
ENV_EXAMPLE = ROOT / ".env.example"
SCRIPTS = ["setup-env.sh", "backup.sh", "restore.sh"]
SECRET_KEYS = ("NEO4J_PASSWORD", "WW_NEO4J_PASSWORD", "WW_QDRANT_API_KEY")

WW_NAME = re.compile(r"\bWW_[A-Z0-9_]+\b")
INTERPOLATION = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}")
HEALTH_PATH = "/api/v1/health"


def settings_env_names() -> set[str]:
    return {f"WW_{name.upper()}" for name in Settings.model_fields}


def load_yaml(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text())
    assert isinstance(data, dict)
    return data


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return load_yaml(COMPOSE)


@pytest.fixture(scope="module")
def full() -> dict[str, Any]:
    return load_yaml(COMPOSE_FULL)


def resolved_services(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Services with ``extends`` from docker-compose.yml merged in, as compose would."""
    base = load_yaml(COMPOSE)["services"]
    out: dict[str, dict[str, Any]] = {}
    for name, svc in doc["services"].items():
        ext = svc.get("extends")
        if ext is not None:
            assert ext["file"] == COMPOSE.name
            merged = dict(base[ext["service"]])
            merged.update({k: v for k, v in svc.items() if k != "extends"})
            svc = merged
        out[name] = svc
    return out


def env_of(svc: dict[str, Any]) -> dict[str, str]:
    env = svc.get("environment", {})
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {str(k): str(v) for k, v in env.items()}


def dockerfile_instructions() -> list[tuple[str, str]]:
    text = DOCKERFILE.read_text().replace("\\\n", " ")
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def env_file_values(path: Path) -> dict[str, str]:
    values = {}
    for line in path.read_text().splitlines():
        if line and not line.startswith("#") and "=" in line:
            key, _, value = line.partition("=")
            values[key.strip()] = value.strip()
    return values


# -- compose files -------------------------------------------------------------------------


@pytest.mark.parametrize("path", [COMPOSE, COMPOSE_FULL], ids=lambda p: p.name)
def test_compose_sets_only_existing_settings(path: Path) -> None:
    names = set(WW_NAME.findall(path.read_text()))
    assert names, "the compose files configure the API through WW_* names"
    # Settings and flags' start values (WW_FLAG_*) alike.
    assert names <= known_env_names(), names - known_env_names()


def test_infrastructure_compose(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert set(services) == {"neo4j", "qdrant"}
    neo4j, qdrant = services["neo4j"], services["qdrant"]

    image, tag = neo4j["image"].split(":")
    assert image == "neo4j"
    assert tag.startswith("5.")
    assert tag.endswith("-community")
    # Neo4j's password has no default: compose stops with a message while it is unset.
    assert re.search(r"/\$\{NEO4J_PASSWORD:\?[^}]+\}$", env_of(neo4j)["NEO4J_AUTH"])
    assert re.fullmatch(
        r"\$\{WW_QDRANT_API_KEY:\?[^}]+\}", env_of(qdrant)["QDRANT__SERVICE__API_KEY"]
    )
    assert (neo4j["container_name"], qdrant["container_name"]) == ("ww-neo4j", "ww-qdrant")
    assert "127.0.0.1:7687:7687" in neo4j["ports"]
    assert "127.0.0.1:6333:6333" in qdrant["ports"]
    # The readiness path Qdrant serves without an API key.
    assert "/readyz" in " ".join(qdrant["healthcheck"]["test"])


def test_qdrant_image_is_pinned_near_the_client(compose: dict[str, Any]) -> None:
    image, tag = compose["services"]["qdrant"]["image"].split(":")
    assert image == "qdrant/qdrant"
    m = re.fullmatch(r"v(\d+)\.(\d+)\.(\d+)", tag)
    assert m, f"qdrant must be pinned to a release, not {tag!r}"
    server = (int(m[1]), int(m[2]))
    client_major, client_minor = (int(x) for x in version("qdrant-client").split(".")[:2])
    # qdrant-client supports servers within one minor version of its own.
    assert server[0] == client_major
    assert abs(server[1] - client_minor) <= 1, (server, version("qdrant-client"))


def test_full_stack_compose(full: dict[str, Any]) -> None:
    services = resolved_services(full)
    assert set(services) == {"neo4j", "qdrant", "redis", "jaeger", "ww-api"}
    api = services["ww-api"]
    assert api["build"]["context"] == "."
    assert api["build"]["dockerfile"] == DOCKERFILE.name
    assert "container_name" not in api  # a fixed name forbids replicas (docker-compose.prod.yml)
    env = env_of(api)

    defaults = Settings.model_fields
    port = defaults["api_port"].default
    assert env["WW_API_PORT"] == str(port) == "8765"
    assert f"127.0.0.1:{port}:{port}" in api["ports"]
    assert HEALTH_PATH in " ".join(api["healthcheck"]["test"])
    assert f":{port}{HEALTH_PATH}" in " ".join(api["healthcheck"]["test"])

    # The API reaches the other services by their compose names and published ports.
    assert env["WW_QDRANT_URL"] == "http://qdrant:6333"
    assert env["WW_NEO4J_URI"] == "bolt://neo4j:7687"
    assert env["WW_NEO4J_PASSWORD"].startswith("${NEO4J_PASSWORD:?")
    assert env["WW_QDRANT_API_KEY"].startswith("${WW_QDRANT_API_KEY:?")
    assert env["WW_DATA_DIR"] == "/data"
    settings = Settings(
        **{k[3:].lower(): v for k, v in env.items() if "${" not in v}  # type: ignore[arg-type]
    )
    assert settings.uses_server_backends  # the full stack may run several workers
    # ... which count requests together in the stack's Redis.
    assert settings.rate_limiter_redis_url == "redis://redis:6379/0"
    assert "redis" in api["depends_on"]

    for dep, cond in api["depends_on"].items():
        assert cond == {"condition": "service_healthy"}
        assert "healthcheck" in services[dep], dep

    for name, svc in services.items():
        for image in [svc.get("image", "")]:
            if name != "ww-api":
                assert image and not image.endswith(":latest") and ":" in image, name


@pytest.mark.parametrize("path", [COMPOSE, COMPOSE_FULL], ids=lambda p: p.name)
def test_ports_on_loopback_and_named_volumes(path: Path) -> None:
    doc = load_yaml(path)
    services = resolved_services(doc)
    declared = set(doc.get("volumes") or {})
    for name, svc in services.items():
        for port in svc.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), (name, port)
        for volume in svc.get("volumes", []):
            source = str(volume).split(":", 1)[0]
            # Named volumes only: no host paths to own, back up or lose by accident.
            assert not source.startswith((".", "/", "~")), (name, volume)
            assert source in declared, (name, volume)
        if name != "jaeger":  # no shell or HTTP client in that image to run a check with
            assert svc.get("healthcheck", {}).get("test"), f"{name} has no healthcheck"


def test_health_path_is_served() -> None:
    assert HEALTH_PATH in {getattr(r, "path", None) for r in system_router.routes}


# -- Dockerfile ----------------------------------------------------------------------------


def test_dockerfile_is_multi_stage_non_root_and_matches_the_code() -> None:
    instructions = dockerfile_instructions()
    stages = [i for i, (word, _) in enumerate(instructions) if word == "FROM"]
    assert len(stages) >= 2
    runtime = instructions[stages[-1] :]

    users = [rest for word, rest in runtime if word == "USER"]
    assert users and users[-1] not in {"root", "0", "0:0"}
    assert ("EXPOSE", "8765") in runtime
    assert any(word == "HEALTHCHECK" and HEALTH_PATH in rest for word, rest in runtime)
    cmd = [rest for word, rest in runtime if word == "CMD"][-1]
    assert cmd == '["python", "-m", "ww.api.server"]'
    assert find_spec("ww.api.server") is not None
    env = " ".join(rest for word, rest in runtime if word == "ENV")
    assert set(WW_NAME.findall(env)) <= settings_env_names()
    assert "WW_API_PORT=8765" in env


def test_dockerfile_installs_existing_extras() -> None:
    extras_available = set(
        tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    )
    runs = [rest for word, rest in dockerfile_instructions() if word == "RUN"]
    installs = [r for r in runs if "pip install" in r and ".[" in r]
    assert installs
    for line in installs:
        m = re.search(r"\.\[([a-z0-9_,-]+)\]", line)
        assert m
        extras = set(m[1].split(","))
        assert {"api", "server"} <= extras
        assert extras <= extras_available, extras - extras_available


def test_image_carries_the_vendored_model() -> None:
    copies = [rest for word, rest in dockerfile_instructions() if word == "COPY"]
    assert "src ./src" in copies
    model = ROOT / "src/ww/embedding/models/all-MiniLM-L6-v2-int8/model.onnx"
    assert model.is_file()
    ignored = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    for pattern in ignored:
        assert not "src/ww/embedding/models".startswith(pattern.rstrip("/*")), pattern
    assert ".env" in ignored  # secrets never enter the build context


# -- .env.example --------------------------------------------------------------------------


def test_env_example_names_exist_and_cover_the_guide() -> None:
    text = ENV_EXAMPLE.read_text()
    names = set(WW_NAME.findall(text))
    assert names <= settings_env_names(), names - settings_env_names()
    guide_names = {
        "WW_NEO4J_URI",
        "WW_NEO4J_USER",
        "WW_NEO4J_PASSWORD",
        "WW_SESSION_ID",
        "WW_QDRANT_URL",
        "WW_EMBEDDING_MODEL",
        "WW_EMBEDDING_DIMENSION",
        "WW_EMBEDDING_DEVICE",
        "WW_API_HOST",
        "WW_API_PORT",
        "WW_API_WORKERS",
        "WW_FSRS_DEFAULT_STABILITY",
        "WW_FSRS_RETENTION_TARGET",
        "WW_HEBBIAN_LEARNING_RATE",
    }
    assert guide_names <= names
    values = env_file_values(ENV_EXAMPLE)
    assert {"NEO4J_USER", "NEO4J_PASSWORD"} <= set(values)
    for key in SECRET_KEYS:
        assert values[key] == "", f"{key} must ship empty, for setup-env.sh to fill"
    assert values["WW_API_PORT"] == "8765"
    assert values["WW_QDRANT_URL"] == "http://localhost:6333"
    assert values["WW_NEO4J_URI"] == "bolt://localhost:7687"


# -- scripts -------------------------------------------------------------------------------


@pytest.mark.parametrize("script", SCRIPTS)
def test_scripts_parse_and_are_executable(script: str) -> None:
    path = ROOT / "scripts" / script
    assert os.access(path, os.X_OK)
    subprocess.run(["bash", "-n", str(path)], check=True)


@pytest.fixture
def workdir(tmp_path: Path) -> Iterator[Path]:
    """A copy of the repo's script and example, so the real .env is never touched."""
    (tmp_path / "scripts").mkdir()
    shutil.copy2(ROOT / "scripts" / "setup-env.sh", tmp_path / "scripts" / "setup-env.sh")
    shutil.copy2(ENV_EXAMPLE, tmp_path / ".env.example")
    yield tmp_path


def setup_env(workdir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(workdir / "scripts" / "setup-env.sh"), *args],
        cwd=workdir,
        stdin=subprocess.DEVNULL,  # not a terminal: no prompt, so no consent
        capture_output=True,
        text=True,
        timeout=60,
    )


def assert_strong_secrets(values: dict[str, str]) -> None:
    neo4j, qdrant = values["NEO4J_PASSWORD"], values["WW_QDRANT_API_KEY"]
    assert values["WW_NEO4J_PASSWORD"] == neo4j  # must match Neo4j
    for secret in (neo4j, qdrant):
        assert len(secret) >= 24
        assert re.fullmatch(r"[0-9a-f]+", secret)
        assert len(set(secret)) >= 8  # not a constant or a short repeated pattern
    assert neo4j != qdrant


def test_setup_env_creates_env_with_strong_secrets(workdir: Path) -> None:
    r = setup_env(workdir)
    assert r.returncode == 0, r.stderr
    env = workdir / ".env"
    assert env.stat().st_mode & 0o777 == 0o600
    values = env_file_values(env)
    assert_strong_secrets(values)
    for secret in (values["NEO4J_PASSWORD"], values["WW_QDRANT_API_KEY"]):
        assert secret not in r.stdout + r.stderr  # never printed
    # Everything but the secrets is the example, line for line.
    example = ENV_EXAMPLE.read_text().splitlines()
    written = env.read_text().splitlines()
    assert len(written) == len(example)
    for old, new in zip(example, written, strict=True):
        if not old.startswith(tuple(f"{k}=" for k in SECRET_KEYS)):
            assert new == old


def test_setup_env_secrets_are_random(
    workdir: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    first = workdir / "a.env"
    second = workdir / "b.env"
    assert setup_env(workdir, "--output", str(first)).returncode == 0
    assert setup_env(workdir, "--output", str(second)).returncode == 0
    a, b = env_file_values(first), env_file_values(second)
    assert a["NEO4J_PASSWORD"] != b["NEO4J_PASSWORD"]
    assert a["WW_QDRANT_API_KEY"] != b["WW_QDRANT_API_KEY"]


def test_setup_env_fills_a_fresh_copy_of_the_example(workdir: Path) -> None:
    # The guide's order: `cp .env.example .env`, then the script.
    shutil.copy2(ENV_EXAMPLE, workdir / ".env")
    r = setup_env(workdir)
    assert r.returncode == 0, r.stderr
    assert_strong_secrets(env_file_values(workdir / ".env"))
    assert not (workdir / ".env.bak").exists()  # nothing was replaced


def test_setup_env_keeps_existing_secrets_without_consent(workdir: Path) -> None:
    assert setup_env(workdir).returncode == 0
    env = workdir / ".env"
    env.write_text(env.read_text() + "WW_SESSION_ID=mine\n")
    before = env.read_bytes()

    r = setup_env(workdir)
    assert r.returncode != 0
    assert "--force" in r.stderr
    assert env.read_bytes() == before

    r = setup_env(workdir, "--force")
    assert r.returncode == 0, r.stderr
    after = env_file_values(env)
    assert_strong_secrets(after)
    assert after["NEO4J_PASSWORD"] != env_file_values(workdir / ".env.bak")["NEO4J_PASSWORD"]
    assert (workdir / ".env.bak").read_bytes() == before
    assert after["WW_SESSION_ID"] == "mine"  # only the secrets change


def test_setup_env_output_loads_as_settings(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert setup_env(workdir).returncode == 0
    values = env_file_values(workdir / ".env")
    for name in settings_env_names():
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(workdir)  # Settings reads ./.env
    s = load_settings()
    assert s.neo4j_password is not None
    assert s.neo4j_password.get_secret_value() == values["NEO4J_PASSWORD"]
    assert s.qdrant_api_key is not None
    assert s.qdrant_api_key.get_secret_value() == values["WW_QDRANT_API_KEY"]
    assert s.qdrant_url == "http://localhost:6333"
    assert s.neo4j_uri == "bolt://localhost:7687"
    assert s.api_port == 8765


@pytest.mark.parametrize("path", [COMPOSE, COMPOSE_FULL], ids=lambda p: p.name)
def test_compose_interpolates_from_the_generated_env(workdir: Path, path: Path) -> None:
    """Every required ``${VAR:?}`` of the compose files is set by the generated .env."""
    assert setup_env(workdir).returncode == 0
    values = env_file_values(workdir / ".env")
    refs = INTERPOLATION.findall(path.read_text())
    assert refs
    for name, op, _ in refs:
        if op in (":?", "?"):
            assert values.get(name), f"{path.name} needs {name}, which .env leaves empty"
        elif not op:
            assert name in values, name


def test_the_full_stack_sends_its_traces_to_its_jaeger() -> None:
    services = load_yaml(COMPOSE_FULL)["services"]
    env = services["ww-api"]["environment"]
    assert env["WW_OTEL_ENABLED"] == "true" and env["WW_FLAG_TELEMETRY"] == "true"
    endpoint = env["WW_OTEL_ENDPOINT"]
    host, port = endpoint.removeprefix("http://").split(":")
    assert host in services and env["WW_OTEL_PROTOCOL"] == "grpc"
    assert any(p.endswith(f":{port}:{port}") for p in services[host]["ports"])
    # Tracing on without the `otel` extra stops start-up: the image must have it.
    assert ".[api,server,otel]" in DOCKERFILE.read_text()
    settings = Settings(otel_enabled=True, otel_endpoint=endpoint)  # type: ignore[call-arg]
    assert settings.otel_endpoint == endpoint
