"""Every ``WW_*`` name written in a deployment file is one the code reads.

The manifests, the chart (templates and values), the compose files, the Dockerfile,
``.env.example`` and docs/kubernetes.md are read as text, so a name in a comment counts too:
a documented variable that nothing reads is as wrong as a configured one.
"""

from __future__ import annotations

from tests.deploy.rendering import ROOT, ww_names
from ww.config import known_env_names

DEPLOYMENT_FILES = sorted(
    [
        *(p for p in (ROOT / "deploy").rglob("*") if p.is_file()),
        *ROOT.glob("docker-compose*.yml"),
        ROOT / ".env.example",
        ROOT / "Dockerfile",
        ROOT / "docs" / "kubernetes.md",
    ]
)


def test_the_deployment_files_are_all_checked() -> None:
    names = {str(p.relative_to(ROOT)) for p in DEPLOYMENT_FILES}
    assert {
        "docker-compose.yml",
        "docker-compose.full.yml",
        ".env.example",
        "deploy/kubernetes/base/configmap.yaml",
        "deploy/helm/world-weaver/values.yaml",
        "deploy/helm/world-weaver/templates/configmap.yaml",
    } <= names


def test_every_ww_name_is_read_by_the_code() -> None:
    known = known_env_names()
    unknown = {path: names - known for path, names in ww_names(DEPLOYMENT_FILES).items()}
    assert not {path: names for path, names in unknown.items() if names}
    assert set().union(*ww_names(DEPLOYMENT_FILES).values()) >= {
        "WW_API_PORT",
        "WW_SECRETS_BACKEND",
        "WW_NEO4J_URI",
    }
