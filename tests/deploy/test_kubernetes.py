"""deploy/kubernetes: the kustomize base and the guide's dev, staging and prod overlays,
rendered with ``kubectl kustomize`` and read as the API and the cluster would read them."""

from __future__ import annotations

from functools import cache

import pytest

from tests.deploy.rendering import ROOT, Objects, check_api_workload, find_tool, run_tool

KUSTOMIZE = ROOT / "deploy" / "kubernetes"
OVERLAYS = ["dev", "staging", "prod"]


@cache
def render(overlay: str) -> Objects:
    kubectl = find_tool("kubectl", "WW_TEST_KUBECTL")
    return Objects(run_tool(kubectl, "kustomize", str(KUSTOMIZE / "overlays" / overlay)))


def test_the_guides_overlays_exist() -> None:
    # `kubectl apply -k deploy/kubernetes/overlays/<env>`, as in the deployment guide.
    found = {p.name for p in (KUSTOMIZE / "overlays").iterdir() if p.is_dir()}
    assert found == set(OVERLAYS)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_overlay_runs_the_api_as_configured(
    overlay: str, served_get_paths: set[str], version: str
) -> None:
    objs = render(overlay)
    check_api_workload(objs, served_get_paths, version)
    namespaces = {o["metadata"].get("namespace") for o in objs.items}
    assert len(namespaces) == 1 and None not in namespaces, namespaces


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_secret_is_referenced_never_written(overlay: str) -> None:
    objs = render(overlay)
    assert not objs.of("Secret"), "secret values never live in the repository"
    volume = next(v for v in objs.pod()["volumes"] if "secret" in v)
    assert volume["secret"]["secretName"] == "world-weaver-secrets"
    # Only dev starts without one (an open API, which development allows with a warning).
    assert volume["secret"].get("optional", False) is (overlay == "dev")


def test_dev_is_one_replica_on_the_embedded_tier() -> None:
    objs = render("dev")
    assert objs.one("Deployment")["spec"]["replicas"] == 1
    assert not objs.of("HorizontalPodAutoscaler")
    settings = objs.settings()
    assert settings.neo4j_uri is None and not settings.uses_server_backends
    assert settings.api_workers == 1
    claim = objs.one("PersistentVolumeClaim")
    data = next(v for v in objs.pod()["volumes"] if v["name"] == "data")
    assert data == {
        "name": "data",
        "persistentVolumeClaim": {"claimName": claim["metadata"]["name"]},
    }
    # Reduced resources: below staging's.
    dev_limits = objs.container()["resources"]["limits"]
    staging_limits = render("staging").container()["resources"]["limits"]
    assert dev_limits != staging_limits


@pytest.mark.parametrize("overlay", ["staging", "prod"])
def test_multi_replica_overlays_are_on_the_server_tier(overlay: str) -> None:
    objs = render(overlay)
    assert objs.one("Deployment")["spec"]["replicas"] > 1
    hpa = objs.one("HorizontalPodAutoscaler")
    assert hpa["spec"]["minReplicas"] > 1
    assert hpa["spec"]["scaleTargetRef"]["name"] == objs.one("Deployment")["metadata"]["name"]
    settings = objs.settings()
    assert settings.uses_server_backends
    assert settings.environment.value == {"staging": "staging", "prod": "production"}[overlay]


def test_prod_is_highly_available() -> None:
    objs = render("prod")
    deployment = objs.one("Deployment")
    replicas = deployment["spec"]["replicas"]
    assert replicas >= 3
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]

    pdb = objs.one("PodDisruptionBudget")
    selector = pdb["spec"]["selector"]["matchLabels"]
    assert selector.items() <= pod_labels.items()
    assert 1 <= pdb["spec"]["minAvailable"] < replicas  # drains proceed, one at a time

    anti = objs.pod()["affinity"]["podAntiAffinity"][
        "requiredDuringSchedulingIgnoredDuringExecution"
    ]
    assert anti[0]["topologyKey"] == "kubernetes.io/hostname"
    assert anti[0]["labelSelector"]["matchLabels"].items() <= pod_labels.items()
    assert objs.settings().environment.value == "production"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_network_policy_admits_the_api_port_only(overlay: str) -> None:
    objs = render(overlay)
    policy = objs.one("NetworkPolicy")
    pod_labels = objs.one("Deployment")["spec"]["template"]["metadata"]["labels"]
    assert policy["spec"]["podSelector"]["matchLabels"].items() <= pod_labels.items()
    ingress_ports = [p["port"] for rule in policy["spec"]["ingress"] for p in rule["ports"]]
    assert ingress_ports == [objs.container()["ports"][0]["name"]]
    egress = {p["port"] for rule in policy["spec"]["egress"] for p in rule["ports"]}
    # Neo4j's Bolt port exactly where a Neo4j is configured.
    assert (7687 in egress) is (objs.settings().neo4j_uri is not None)
