"""The rendered configurations, run: the real server started with an overlay's ConfigMap
as its environment and the overlay's Secret as files in WW_SECRETS_DIR, answering its
probes and reading its key from the mounted file.

Only what a pod would change is changed: the address (loopback here, 0.0.0.0 in a pod), the
port, and the data and secrets directories (the pod's mounts). prod, and the Helm chart installed
as the deployment guide says, run on the test Neo4j with production's start-up checks and two
workers.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.deploy.rendering import Objects
from tests.deploy.test_helm import GUIDE, secret_files
from tests.deploy.test_helm import render as render_chart
from tests.deploy.test_kubernetes import render
from tests.e2e.conftest import Server
from tests.neo4j_launcher import Neo4jProcess, wipe_database

KEY = "k8s-test-user-key-0123456789abcdef"
NEO4J_PASSWORD = "k8s-test-neo4j-password-0123456789"


def run(objs: Objects, tmp_path: Path, secrets: dict[str, str], **env: str) -> Server:
    (tmp_path / "secrets").mkdir()
    for name, value in secrets.items():
        (tmp_path / "secrets" / name).write_text(value + "\n")
    config = {
        **objs.config(),
        "WW_DATA_DIR": str(tmp_path / "data"),
        "WW_SECRETS_DIR": str(tmp_path / "secrets"),
        **env,
    }
    config.pop("WW_API_HOST")  # loopback, from server_env: never 0.0.0.0 in a test
    config.pop("WW_API_PORT")  # a free port, from Server
    return Server(tmp_path / "data", tmp_path / "server.log").start(**config)


def check_probes_and_key(objs: Objects, server: Server, key: str = KEY) -> None:
    server.wait_ready(timeout=120)
    c = objs.container()
    with httpx.Client(base_url=server.url, timeout=10.0) as client:
        for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
            path = c[probe]["httpGet"]["path"]
            assert client.get(path).status_code == 200, (probe, path)
        # The key came from the mounted file: it is required, and accepted.
        assert client.get("/api/v1/episodes").status_code == 401
        r = client.get("/api/v1/episodes", headers={"X-API-Key": key})
        assert r.status_code == 200, r.text
    server.stop()


def test_dev_overlay_serves_on_the_embedded_tier(tmp_path: Path) -> None:
    objs = render("dev")
    server = run(objs, tmp_path, {"api_key": KEY})
    try:
        check_probes_and_key(objs, server)
    finally:
        server.cleanup()
    assert (tmp_path / "data").is_dir()  # the embedded stores live on the claim's mount


def test_prod_overlay_serves_on_neo4j_in_production(
    neo4j_server: Neo4jProcess, tmp_path: Path
) -> None:
    objs = render("prod")
    assert objs.config()["WW_ENVIRONMENT"] == "production"
    assert int(objs.config()["WW_API_WORKERS"]) > 1
    wipe_database(neo4j_server.uri)
    secrets = {"api_key": KEY, "neo4j_password": NEO4J_PASSWORD}
    server = run(objs, tmp_path, secrets, WW_NEO4J_URI=neo4j_server.uri)
    try:
        check_probes_and_key(objs, server)
    finally:
        server.cleanup()
        wipe_database(neo4j_server.uri)


@pytest.mark.parametrize("missing", ["api_key", "neo4j_password"])
def test_prod_overlay_refuses_to_start_without_its_secrets(
    neo4j_server: Neo4jProcess, tmp_path: Path, missing: str
) -> None:
    objs = render("prod")
    secrets = {"api_key": KEY, "neo4j_password": NEO4J_PASSWORD}
    del secrets[missing]
    server = run(objs, tmp_path, secrets, WW_NEO4J_URI=neo4j_server.uri)
    try:
        assert server.proc is not None
        assert server.proc.wait(timeout=120) != 0
    finally:
        server.cleanup()
    assert f"WW_{missing.upper()}" in server.log()


def test_the_guides_helm_install_serves_on_neo4j_in_production(
    chart: Path, neo4j_server: Neo4jProcess, tmp_path: Path
) -> None:
    objs = render_chart(chart, GUIDE)
    # The Secret's files as the pod sees them, the generated client key among them.
    volume = next(v for v in objs.pod()["volumes"] if v["name"] == "secrets")
    files = secret_files(objs, volume["secret"]["secretName"])
    wipe_database(neo4j_server.uri)
    server = run(objs, tmp_path, files, WW_NEO4J_URI=neo4j_server.uri)
    try:
        check_probes_and_key(objs, server, key=files["api_key"])
    finally:
        server.cleanup()
        wipe_database(neo4j_server.uri)
