"""``/ui``: the explorer's shell is served from the package without a credential (and with
nothing secret in it), under its strict CSP, while the API it calls stays behind auth."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from tests.api.helpers import assert_envelope, running_client, scratch_dir
from tests.conftest import ManualClock
from ww.api.routers.ui import EXPLORER_DIR
from ww.api.security import EXPLORER_CSP
from ww.embedding import OnnxEmbedder

KEY = "ww_explorer-route-test-key-000001"


@pytest.fixture(scope="module")
def client(onnx_embedder: OnnxEmbedder) -> Iterator[TestClient]:
    with (
        scratch_dir() as tmp,
        running_client(tmp / "data", onnx_embedder, ManualClock(), api_key=KEY) as c,
    ):
        yield c


@pytest.mark.parametrize("path", ["/ui", "/ui/", "/ui/index.html"])
def test_the_page_is_public_html_under_the_strict_policy(client: TestClient, path: str) -> None:
    r = client.get(path)
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/html")
    assert r.headers["content-security-policy"] == EXPLORER_CSP
    assert r.headers["cache-control"] == "no-store"
    assert '<script type="module" src="/ui/app.js">' in r.text


def test_every_shipped_file_is_served_with_its_type(client: TestClient) -> None:
    types = {".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml"}
    files = [p for p in EXPLORER_DIR.rglob("*") if p.is_file() and p.suffix in types]
    assert any(p.name == "app.js" for p in files)
    for file in files:
        r = client.get("/ui/" + file.relative_to(EXPLORER_DIR).as_posix())
        assert r.status_code == 200, file
        assert r.headers["content-type"].startswith(types[file.suffix]), file
        assert r.headers["content-security-policy"] == EXPLORER_CSP


def test_the_shell_holds_no_inline_script_or_style() -> None:
    page = (EXPLORER_DIR / "index.html").read_text()
    # Every script has a src; no style element or attribute (the CSP would block them).
    assert re.findall(r"<script(?![^>]*\bsrc=)", page) == []
    assert "<style" not in page and "style=" not in page and " on" + "click=" not in page
    for script in EXPLORER_DIR.rglob("*.js"):
        text = script.read_text()
        assert "innerHTML" not in text and "eval(" not in text, script


def test_the_api_behind_it_still_needs_a_key(client: TestClient) -> None:
    assert_envelope(client.get("/api/v1/episodes"), 401, "unauthorized")
    ok = client.get("/api/v1/episodes", headers={"X-API-Key": KEY})
    assert ok.status_code == 200


@pytest.mark.parametrize(
    "path", ["/ui/../pyproject.toml", "/ui/%2e%2e/%2e%2e/config.py", "/ui/nothing.js"]
)
def test_nothing_outside_the_explorer_folder_is_served(client: TestClient, path: str) -> None:
    r = client.get(path)
    assert r.status_code in (401, 404)
    assert "pyproject" not in r.text and "Settings" not in r.text
