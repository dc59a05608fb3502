"""docker-compose.prod.yml, the guide's horizontal scaling: laid over the full stack as
compose merges it (``-f docker-compose.full.yml -f docker-compose.prod.yml``) and checked
against the settings the API replicas would load and the guide's resource limits."""

from __future__ import annotations

import re
from typing import Any

import yaml

from tests.deploy.rendering import ROOT
from tests.deploy.test_deploy_files import COMPOSE_FULL, env_of, resolved_services
from ww.config import Settings

PROD = ROOT / "docker-compose.prod.yml"
API_PORT: int = Settings.model_fields["api_port"].default
MAX_BODY: int = Settings.model_fields["api_max_body_bytes"].default


class _Reset:
    """Compose's ``!reset``: the merged file drops the value it replaces."""


class ComposeLoader(yaml.SafeLoader):
    pass


ComposeLoader.add_constructor("!reset", lambda loader, node: _Reset())


def merged() -> tuple[dict[str, dict[str, Any]], dict[str, Any]]:
    """The services of the full stack with the prod file merged in, and the prod file."""
    prod = yaml.load(PROD.read_text(), Loader=ComposeLoader)  # a SafeLoader, plus !reset
    services = resolved_services(yaml.safe_load(COMPOSE_FULL.read_text()))
    for name, override in prod["services"].items():
        svc = dict(services.get(name, {}))
        for key, value in override.items():
            if isinstance(value, _Reset):
                svc.pop(key, None)
            elif isinstance(value, dict) and isinstance(svc.get(key), dict):
                svc[key] = {**svc[key], **value}
            else:
                svc[key] = value
        services[name] = svc
    return services, prod


def api_settings(api: dict[str, Any]) -> Settings:
    env = {k[3:].lower(): v for k, v in env_of(api).items() if "${" not in v}
    return Settings(_env_file=None, **env)  # type: ignore[arg-type]


def test_replicas_with_the_guides_limits() -> None:
    services, _ = merged()
    api = services["ww-api"]
    assert api["deploy"]["replicas"] >= 2
    assert api["deploy"]["resources"] == {
        "limits": {"cpus": "2", "memory": "4G"},
        "reservations": {"cpus": "1", "memory": "2G"},
    }
    # Replicas can neither share a container name nor a host port.
    assert "container_name" not in api and "ports" not in api


def test_replicas_share_the_server_tier_and_one_rate_limit() -> None:
    services, _ = merged()
    settings = api_settings(services["ww-api"])
    assert settings.uses_server_backends
    url = settings.rate_limiter_redis_url
    assert url is not None
    m = re.fullmatch(r"redis://([a-z0-9-]+):(\d+)/\d+", url)
    assert m, url
    redis = services[m[1]]
    assert redis["image"].startswith("redis:")
    assert any(str(p).endswith(f":{m[2]}") for p in redis["ports"])
    assert m[1] in services["ww-api"]["depends_on"]


def test_load_balancer_fronts_the_replicas() -> None:
    services, prod = merged()
    lb = services["ww-lb"]
    image, _, tag = lb["image"].partition(":")
    assert image == "nginx" and tag and tag != "latest"
    assert lb["ports"] == [f"127.0.0.1:{API_PORT}:{API_PORT}"]  # where the API was
    assert lb["depends_on"] == {"ww-api": {"condition": "service_healthy"}}
    assert f":{API_PORT}/api/v1/health" in " ".join(lb["healthcheck"]["test"])

    [mount] = lb["configs"]
    conf = prod["configs"][mount["source"]]["content"]
    assert mount["target"].startswith("/etc/nginx/conf.d/")
    assert f"listen {API_PORT};" in conf
    # Compose turns $$ into $: nginx's variables survive interpolation.
    assert f"set $$api http://ww-api:{API_PORT};" in conf
    assert "proxy_pass $$api;" in conf
    assert "resolver 127.0.0.11" in conf  # Docker's DNS, looked up again as replicas change
    m = re.search(r"client_max_body_size (\d+)m;", conf)
    assert m and int(m[1]) * 1024 * 1024 > MAX_BODY  # the API's own 413 reaches the client
