"""CORS from ``WW_API_CORS_ORIGINS`` and the security headers on every answer, errors too."""

from __future__ import annotations

import re
from collections.abc import Iterator
from unittest import mock

import pytest
from fastapi.testclient import TestClient

from tests.api.helpers import assert_envelope, running_client, scratch_dir
from tests.conftest import ManualClock
from ww.api.security import (
    CORS_ALLOWED_HEADERS,
    DOCS_CSP,
    JSON_CSP,
    SECURITY_HEADERS,
)
from ww.embedding import OnnxEmbedder
from ww.engine import MemoryEngine

ALLOWED = "https://app.example.com"
OTHER = "https://evil.example.net"
EPISODES = "/api/v1/episodes"


@pytest.fixture(scope="module")
def client(onnx_embedder: OnnxEmbedder) -> Iterator[TestClient]:
    with (
        scratch_dir() as tmp,
        running_client(
            tmp / "data",
            onnx_embedder,
            ManualClock(),
            api_cors_origins=[ALLOWED, "http://127.0.0.1:3000"],
            api_max_body_bytes=1024,
        ) as c,
    ):
        yield c


def test_preflight_from_an_allowed_origin_names_exactly_the_guides_headers(
    client: TestClient,
) -> None:
    r = client.options(
        EPISODES,
        headers={
            "Origin": ALLOWED,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "x-api-key, content-type, x-session-id",
        },
    )
    assert r.status_code == 200
    assert r.headers["access-control-allow-origin"] == ALLOWED
    allowed = {h.strip() for h in r.headers["access-control-allow-headers"].split(",")}
    # Starlette adds the CORS-safelisted ones (Accept, Accept-Language, Content-Language).
    assert allowed - {"Accept", "Accept-Language", "Content-Language"} == set(CORS_ALLOWED_HEADERS)
    assert "PATCH" in r.headers["access-control-allow-methods"]
    assert "access-control-allow-credentials" not in r.headers
    assert r.headers["x-content-type-options"] == "nosniff"  # a preflight is an answer too


def test_preflight_is_refused_for_another_origin_or_header(client: TestClient) -> None:
    r = client.options(
        EPISODES,
        headers={
            "Origin": OTHER,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type",
        },
    )
    assert r.status_code == 400
    assert "access-control-allow-origin" not in r.headers
    r = client.options(
        EPISODES,
        headers={
            "Origin": ALLOWED,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "x-custom-secret",
        },
    )
    assert r.status_code == 400
    r = client.options(
        EPISODES, headers={"Origin": ALLOWED, "Access-Control-Request-Method": "PUT"}
    )
    assert r.status_code == 400


def test_simple_requests_are_tagged_for_allowed_origins_only(client: TestClient) -> None:
    r = client.get("/api/v1/health", headers={"Origin": ALLOWED})
    assert r.status_code == 200
    assert r.headers["access-control-allow-origin"] == ALLOWED
    exposed = r.headers["access-control-expose-headers"]
    assert "X-Request-ID" in exposed and "Retry-After" in exposed
    assert "X-RateLimit-Remaining" in exposed and "X-RateLimit-Reset" in exposed
    r = client.get("/api/v1/health", headers={"Origin": OTHER})
    assert "access-control-allow-origin" not in r.headers


def test_no_origins_means_no_cors_headers(onnx_embedder: OnnxEmbedder) -> None:
    with scratch_dir() as tmp, running_client(tmp / "data", onnx_embedder, ManualClock()) as c:
        r = c.get("/api/v1/health", headers={"Origin": ALLOWED})
        assert r.status_code == 200
        assert not [h for h in r.headers if h.startswith("access-control-")]
        r = c.options(
            EPISODES, headers={"Origin": ALLOWED, "Access-Control-Request-Method": "POST"}
        )
        assert "access-control-allow-origin" not in r.headers


def assert_secured(r: object, csp: str = JSON_CSP, cached: bool = False) -> None:
    headers = r.headers  # type: ignore[attr-defined]
    for name, value in SECURITY_HEADERS.items():
        assert headers[name] == value, name
    assert headers["content-security-policy"] == csp
    assert ("cache-control" not in headers) if cached else headers["cache-control"] == "no-store"


def test_every_answer_carries_the_security_headers(client: TestClient) -> None:
    assert_secured(client.get("/api/v1/health"))
    assert_secured(client.get("/openapi.json"))
    assert_envelope(r := client.get("/api/v1/nowhere"), 404)
    assert_secured(r)
    assert_envelope(r := client.post(EPISODES, json={"content": 5}), 422)
    assert_secured(r)
    # Refused by the body guard middleware, before any route runs; with CORS as well.
    r = client.post(EPISODES, content=b"x" * 4096, headers={"Origin": ALLOWED})
    assert_envelope(r, 413)
    assert_secured(r)
    assert r.headers["access-control-allow-origin"] == ALLOWED


def test_an_unexpected_error_carries_them_too(client: TestClient) -> None:
    with mock.patch.object(
        MemoryEngine, "create_episodes", autospec=True, side_effect=RuntimeError("boom")
    ):
        r = client.post(EPISODES, json={"content": "x"}, headers={"X-Session-ID": "sec-500"})
    assert_envelope(r, 500, "internal_error")
    assert_secured(r)


def test_docs_pages_get_a_policy_their_scripts_run_under(client: TestClient) -> None:
    for page in ("/docs", "/redoc"):
        r = client.get(page)
        assert r.status_code == 200
        assert_secured(r, DOCS_CSP)
        # Every script and style the page loads is this origin's, which 'self' allows.
        loaded = re.findall(r'(?:src|href)="([^"]+)"', r.text)
        assert loaded and all(u.startswith(("/static/docs/", "/openapi.json")) for u in loaded)
    r = client.get("/static/docs/swagger-ui/swagger-ui-bundle.js")
    assert r.status_code == 200
    assert_secured(r, cached=True)  # static assets may be cached
