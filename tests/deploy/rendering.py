"""Rendering the Kubernetes manifests and the Helm chart, and the checks both must pass.

``kubectl kustomize`` and ``helm template`` produce the objects a cluster would get; the
checks read them as the API would: the port and paths it serves, the settings it reads, the
secret files it opens. Under ``CI=true`` a missing ``kubectl`` or ``helm`` fails the tests
(``.ci/run`` builds Helm into ``tools/bin``); elsewhere they are skipped, saying why.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

from ww.config import Settings, known_env_names
from ww.secrets import SECRET_FIELDS

__all__ = [
    "ROOT",
    "Objects",
    "check_api_workload",
    "find_tool",
    "ww_names",
]

ROOT = Path(__file__).resolve().parents[2]
WW_NAME = re.compile(r"\bWW_[A-Z0-9_]+\b")
API_PORT: int = Settings.model_fields["api_port"].default


def find_tool(name: str, env: str, *local: Path) -> str:
    """The tool's path: ``$env``, then the given local paths, then ``PATH``."""
    candidates = [os.environ.get(env, ""), *(str(p) for p in local)]
    for path in candidates:
        if path and Path(path).is_file() and os.access(path, os.X_OK):
            return path
    found = shutil.which(name)
    if found:
        return found
    where = ", ".join(str(p.relative_to(ROOT)) for p in local)
    reason = f"{name} not found (set {env}, or put it in {where or 'PATH'}" + (
        ", or on PATH; .ci/run builds it there)" if local else ")"
    )
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{reason}: CI must render the deployment files", pytrace=False)
    pytest.skip(reason)


def run_tool(*args: str) -> str:
    r = subprocess.run(args, capture_output=True, text=True, timeout=120, check=False)
    assert r.returncode == 0, f"{' '.join(args[:3])} failed:\n{r.stderr}"
    return r.stdout


def ww_names(paths: Iterable[Path]) -> dict[str, set[str]]:
    """Every ``WW_*`` name written in the files, by file."""
    return {str(p.relative_to(ROOT)): set(WW_NAME.findall(p.read_text())) for p in paths}


class Objects:
    """The objects of one rendering, looked up by kind (and name)."""

    def __init__(self, text: str) -> None:
        self.items: list[dict[str, Any]] = [d for d in yaml.safe_load_all(text) if d]

    def of(self, kind: str) -> list[dict[str, Any]]:
        return [o for o in self.items if o["kind"] == kind]

    def one(self, kind: str) -> dict[str, Any]:
        found = self.of(kind)
        assert len(found) == 1, (kind, [o["metadata"]["name"] for o in found])
        return found[0]

    def config(self) -> dict[str, str]:
        data: dict[str, str] = self.one("ConfigMap")["data"]
        return data

    def pod(self) -> dict[str, Any]:
        spec: dict[str, Any] = self.one("Deployment")["spec"]["template"]["spec"]
        return spec

    def container(self) -> dict[str, Any]:
        containers = self.pod()["containers"]
        assert len(containers) == 1
        c: dict[str, Any] = containers[0]
        return c

    def replicas(self) -> int:
        """The most pods that may run: the autoscaler's maximum, else the replicas."""
        hpas = self.of("HorizontalPodAutoscaler")
        if hpas:
            return int(hpas[0]["spec"]["maxReplicas"])
        return int(self.one("Deployment")["spec"].get("replicas", 1))

    def settings(self) -> Settings:
        """The settings the API would read from the ConfigMap (secrets left out)."""
        values: dict[str, Any] = {k[3:].lower(): v for k, v in self.config().items()}
        values["secrets_backend"] = "env"
        return Settings(_env_file=None, **values)


def _mounts(container: Mapping[str, Any]) -> dict[str, str]:
    return {m["mountPath"]: m["name"] for m in container.get("volumeMounts", [])}


def check_api_workload(objs: Objects, served_get_paths: set[str], version: str) -> None:
    """What every rendering (each overlay, the chart) must hold for the API to run as
    configured: the served port and paths, real settings, secrets as files, the image's
    version, resources, a locked-down container and a tier that fits the replicas."""
    config = objs.config()
    assert set(config) <= known_env_names(), set(config) - known_env_names()
    # No secret setting in a ConfigMap: they are files in the Secret.
    assert not {f"WW_{f.upper()}" for f in SECRET_FIELDS} & set(config)

    c = objs.container()
    assert [p["containerPort"] for p in c["ports"]] == [API_PORT]
    assert config["WW_API_PORT"] == str(API_PORT)
    assert config["WW_API_HOST"] == "0.0.0.0"  # reachable from the Service, not loopback
    port_name = c["ports"][0]["name"]
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        get = c[probe]["httpGet"]
        assert get["port"] in (port_name, API_PORT), probe
        assert get["path"] in served_get_paths, (probe, get["path"])
    # 503 from health (a failing dependency) takes a pod out of the Service.
    assert c["readinessProbe"]["httpGet"]["path"] == "/api/v1/health"
    service = objs.one("Service")
    assert [p["targetPort"] for p in service["spec"]["ports"]] in ([port_name], [API_PORT])

    image = c["image"]
    name, _, tag = image.rpartition(":")
    assert name and tag == version, image

    for kind in ("requests", "limits"):
        assert {"cpu", "memory"} <= set(c["resources"][kind]), kind

    pod, sc = objs.pod(), c["securityContext"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] != 0
    assert sc["readOnlyRootFilesystem"] is True
    assert sc["allowPrivilegeEscalation"] is False
    volumes = {v["name"]: v for v in pod["volumes"]}
    mounts = _mounts(c)
    # The only writable places: the data directory and /tmp.
    assert mounts[config["WW_DATA_DIR"]] in volumes
    assert "emptyDir" in volumes[mounts["/tmp"]]
    # Secrets are files in WW_SECRETS_DIR, read by the file backend.
    assert config["WW_SECRETS_BACKEND"] == "file"
    secrets = volumes[mounts[config["WW_SECRETS_DIR"]]]
    assert "secret" in secrets

    settings = objs.settings()
    if objs.replicas() > 1 or settings.api_workers > 1:
        # The embedded stores belong to one process: several need the server tier.
        assert settings.uses_server_backends, "several API processes on the embedded tier"
    else:
        pvc = volumes[mounts[config["WW_DATA_DIR"]]].get("persistentVolumeClaim")
        assert pvc, "the embedded tier's data directory must outlive the pod"
        assert objs.one("Deployment")["spec"]["strategy"]["type"] == "Recreate"
