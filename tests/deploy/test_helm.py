"""deploy/helm/world-weaver: ``helm lint`` and ``helm template`` with the deployment guide's
install command, its tiers and options, read as the API and the cluster would read them.

Helm comes from ``$WW_TEST_HELM``, ``tools/bin/helm`` (built by ``.ci/run``) or ``PATH``.
The Neo4j and Qdrant subcharts come from their repositories (``helm dependency update``),
which these machines cannot reach: the chart is rendered from a copy without the dependency
list, which changes none of this chart's own objects (the subcharts render only their own).
"""

from __future__ import annotations

import base64
import re
import subprocess
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy.rendering import ROOT, Objects, check_api_workload, find_tool, run_tool
from ww.config import load_settings
from ww.secrets import SECRET_FIELDS

CHART = ROOT / "deploy" / "helm" / "world-weaver"
# The guide's `helm install ww ... --set secrets.jwtSecret=... --set ...`, with fixed
# stand-ins for its `openssl rand -base64` values.
GUIDE = {
    "secrets.jwtSecret": "hQ2vV0Yb8m7c4Yl1Xo0pQm3Jk9sTtZcW0aB1cD2eF3g=",
    "secrets.databasePassword": "c1dB2xQ9zL0pWm3NvK8rTg==",
    "secrets.neo4jPassword": "Zm9vYmFyYmF6cXV4MTIzNA==",
}
EMBEDDED = {
    "neo4j.enabled": "false",
    "replicaCount": "1",
    "apiWorkers": "1",
    "autoscaling.enabled": "false",
    "podDisruptionBudget.enabled": "false",
    "persistence.enabled": "true",
}


@cache
def helm() -> str:
    return find_tool("helm", "WW_TEST_HELM", ROOT / "tools" / "bin" / "helm")


def template(chart: Path, values: dict[str, str]) -> subprocess.CompletedProcess[str]:
    # Secrets and settings stay strings; flags and counts are typed, as --set types them.
    sets = [
        arg
        for k, v in values.items()
        for arg in (
            "--set-string" if k.startswith(("secrets.", "settings.")) else "--set",
            f"{k}={v}",
        )
    ]
    return subprocess.run(
        [helm(), "template", "ww", str(chart), "--namespace", "world-weaver", *sets],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def render(chart: Path, values: dict[str, str]) -> Objects:
    r = template(chart, values)
    assert r.returncode == 0, r.stderr
    return Objects(r.stdout)


def secret_files(objs: Objects, name: str) -> dict[str, str]:
    secret = next(s for s in objs.of("Secret") if s["metadata"]["name"] == name)
    return {k: base64.b64decode(v).decode() for k, v in secret["data"].items()}


def chart_meta() -> dict[str, Any]:
    meta: dict[str, Any] = yaml.safe_load((CHART / "Chart.yaml").read_text())
    return meta


def test_lint_passes_with_the_guides_values() -> None:
    sets = [arg for k, v in GUIDE.items() for arg in ("--set", f"{k}={v}")]
    out = run_tool(helm(), "lint", str(CHART), *sets)
    assert "1 chart(s) linted, 0 chart(s) failed" in out
    assert "[ERROR]" not in out
    warnings = [line for line in out.splitlines() if line.startswith("[WARNING]")]
    # The only warning: the subcharts are not downloaded here.
    assert len(warnings) == 1 and "missing these dependencies: neo4j,qdrant" in warnings[0]


def test_neo4j_and_qdrant_are_dependencies_behind_flags(version: str) -> None:
    meta = chart_meta()
    assert meta["version"] == meta["appVersion"] == version
    deps = {d["name"]: d for d in meta["dependencies"]}
    assert set(deps) == {"neo4j", "qdrant"}
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    for name, dep in deps.items():
        assert dep["condition"] == f"{name}.enabled"
        assert dep["repository"].startswith("https://")
        assert isinstance(values[name]["enabled"], bool)


def test_the_guides_install_runs_the_api(
    chart: Path, served_get_paths: set[str], version: str, tmp_path: Path
) -> None:
    objs = render(chart, GUIDE)
    check_api_workload(objs, served_get_paths, version)
    assert objs.settings().uses_server_backends  # the bundled Neo4j holds everything

    # Every secret is a file named after its setting, in the Secret the pod mounts.
    name = next(v for v in objs.pod()["volumes"] if v["name"] == "secrets")["secret"]["secretName"]
    files = secret_files(objs, name)
    assert set(files) <= set(SECRET_FIELDS)
    for path, text in files.items():
        (tmp_path / path).write_text(text + "\n")
    # The API loads them with the ConfigMap's settings, and production's checks pass:
    # the chart generated the clients' key the guide's command does not give.
    config = {k[3:].lower(): v for k, v in objs.config().items()}
    settings = load_settings(_env_file=None, **{**config, "secrets_dir": tmp_path})
    assert settings.environment.value == "production"
    secret = {f: getattr(settings, f) for f in ("jwt_secret", "neo4j_password", "qdrant_api_key")}
    assert {k: v.get_secret_value() for k, v in secret.items() if v} == {
        "jwt_secret": GUIDE["secrets.jwtSecret"],
        "neo4j_password": GUIDE["secrets.neo4jPassword"],
        "qdrant_api_key": GUIDE["secrets.databasePassword"],
    }
    assert settings.api_key is not None and len(settings.api_key.get_secret_value()) >= 32

    # No secret value outside a Secret.
    others = yaml.safe_dump_all([o for o in objs.items if o["kind"] != "Secret"])
    for value in [*GUIDE.values(), settings.api_key.get_secret_value()]:
        assert value not in others


def test_bundled_neo4j_gets_the_same_password(chart: Path) -> None:
    objs = render(chart, GUIDE)
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    auth = secret_files(objs, values["neo4j"]["neo4j"]["passwordFromSecret"])
    assert auth == {"NEO4J_AUTH": f"neo4j/{GUIDE['secrets.neo4jPassword']}"}
    assert objs.config()["WW_NEO4J_URI"] == "bolt://ww:7687"  # the subchart's Service


def test_bundled_neo4j_needs_a_password(chart: Path) -> None:
    r = template(chart, {})
    assert r.returncode != 0
    assert "secrets.neo4jPassword" in r.stderr


def test_ha_defaults(chart: Path) -> None:
    objs = render(chart, GUIDE)
    pod_labels = objs.one("Deployment")["spec"]["template"]["metadata"]["labels"]
    hpa = objs.one("HorizontalPodAutoscaler")
    assert hpa["spec"]["minReplicas"] >= 2
    pdb = objs.one("PodDisruptionBudget")
    assert pdb["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    assert 1 <= pdb["spec"]["minAvailable"] < hpa["spec"]["minReplicas"]
    anti = objs.pod()["affinity"]["podAntiAffinity"]
    term = anti["preferredDuringSchedulingIgnoredDuringExecution"][0]["podAffinityTerm"]
    assert term["labelSelector"]["matchLabels"].items() <= pod_labels.items()
    service = objs.one("Service")
    assert service["spec"]["selector"].items() <= pod_labels.items()


def test_embedded_tier_is_one_replica_on_a_claim(
    chart: Path, served_get_paths: set[str], version: str
) -> None:
    objs = render(chart, EMBEDDED)
    check_api_workload(objs, served_get_paths, version)
    assert objs.one("Deployment")["spec"]["replicas"] == 1
    assert objs.config()["WW_VECTOR_BACKEND"] == "edge"
    assert not objs.settings().uses_server_backends
    assert objs.one("PersistentVolumeClaim")


@pytest.mark.parametrize(
    "extra", [{"replicaCount": "2"}, {"autoscaling.enabled": "true"}, {"apiWorkers": "2"}]
)
def test_embedded_tier_refuses_several_processes(chart: Path, extra: dict[str, str]) -> None:
    r = template(chart, {**EMBEDDED, **extra})
    assert r.returncode != 0
    assert "embedded tier" in r.stderr


def test_external_neo4j_and_qdrant(chart: Path) -> None:
    objs = render(
        chart,
        {
            **GUIDE,
            "neo4j.enabled": "false",
            "externalNeo4j.uri": "neo4j+s://graph.example.com:7687",
            "qdrant.enabled": "true",
        },
    )
    settings = objs.settings()
    assert settings.neo4j_uri == "neo4j+s://graph.example.com:7687"
    assert settings.qdrant_url == "http://ww-qdrant:6333"
    assert settings.vector_store.value == "qdrant"
    assert settings.uses_server_backends
    assert not [s for s in objs.of("Secret") if "NEO4J_AUTH" in s["data"]]


def test_existing_secret_is_mounted_not_written(chart: Path) -> None:
    objs = render(
        chart,
        {
            "secrets.existingSecret": "mine",
            "neo4j.enabled": "false",
            "externalNeo4j.uri": "bolt://neo4j:7687",
        },
    )
    assert not objs.of("Secret")
    volume = next(v for v in objs.pod()["volumes"] if v["name"] == "secrets")
    assert volume["secret"]["secretName"] == "mine"


def test_settings_pass_through_but_never_a_secret(chart: Path) -> None:
    objs = render(chart, {**GUIDE, "settings.WW_RATE_LIMIT": "10/second"})
    assert objs.settings().rate_limit == "10/second"
    for field in SECRET_FIELDS:
        r = template(chart, {**GUIDE, f"settings.WW_{field.upper()}": "x" * 20})
        assert r.returncode != 0 and "is a secret" in r.stderr, field
    r = template(chart, {**GUIDE, "settings.WW_API_PORT": "9000"})
    assert r.returncode != 0 and "set by the chart" in r.stderr
    r = template(chart, {**GUIDE, "settings.NEO4J_AUTH": "x"})
    assert r.returncode != 0 and "only WW_* settings" in r.stderr


def test_service_monitor_is_optional(chart: Path) -> None:
    assert not render(chart, GUIDE).of("ServiceMonitor")
    objs = render(
        chart,
        {
            **GUIDE,
            "serviceMonitor.enabled": "true",
            "serviceMonitor.authorization.type": "Bearer",
            "serviceMonitor.authorization.credentials.name": "scrape",
            "serviceMonitor.authorization.credentials.key": "token",
        },
    )
    monitor = objs.one("ServiceMonitor")
    service = objs.one("Service")
    assert (
        monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    )
    [endpoint] = monitor["spec"]["endpoints"]
    assert endpoint["port"] == service["spec"]["ports"][0]["name"]
    assert endpoint["path"] == "/metrics"
    assert endpoint["authorization"]["credentials"] == {"name": "scrape", "key": "token"}


def test_the_documented_install_is_the_tested_one() -> None:
    doc = (ROOT / "docs" / "kubernetes.md").read_text()
    install = doc[doc.index("helm install ww") : doc.index("helm upgrade ww")]
    assert set(re.findall(r"--set (secrets\.\w+)=", install)) == set(GUIDE)
