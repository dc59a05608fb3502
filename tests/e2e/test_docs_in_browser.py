"""``/docs`` and ``/redoc`` in a real browser, under the Content-Security-Policy the server
sends, with auth on: both render the API from the vendored assets, with no CSP violation, no
console error or warning, no uncaught exception and no failed request.

Header tests cannot tell whether the policy lets Swagger UI and ReDoc run (an inline script,
a blob: worker, a data: image) or whether the pages' assets are reachable without a key; a
browser enforcing the policy can.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.browser import open_page
from tests.e2e.conftest import Server

if TYPE_CHECKING:
    from playwright.sync_api import Browser

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def docs_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    tmp: Path = tmp_path_factory.mktemp("docs-server")
    server = Server(tmp / "data", tmp / "server.log")
    try:
        # The pages and their assets are exempt; the browser sends no key.
        server.start(WW_API_KEY="ww_docs-browser-test-key-0001").wait_ready()
        yield server.url
    finally:
        server.cleanup()


def test_swagger_ui_renders_the_operations_under_the_csp(browser: Browser, docs_url: str) -> None:
    with open_page(browser, f"{docs_url}/docs") as (page, problems):
        page.locator(".swagger-ui .info .title", has_text="World Weaver").wait_for()
        episodes = page.locator(".opblock-summary-path", has_text="/api/v1/episodes").first
        episodes.wait_for()
        assert episodes.is_visible()
        assert page.locator(".opblock").count() > 10
    assert problems.all() == []


def test_redoc_renders_the_api_under_the_csp(browser: Browser, docs_url: str) -> None:
    with open_page(browser, f"{docs_url}/redoc") as (page, problems):
        page.locator("h1", has_text="World Weaver").first.wait_for()
        # The side menu lists the tags; an operation's path is in the body.
        assert page.get_by_role("menuitem", name="episodes").first.is_visible()
        page.get_by_text("/api/v1/episodes").first.wait_for(state="attached")
    assert problems.all() == []
