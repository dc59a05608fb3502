"""The explorer's shell (``/ui``) in a real browser: it loads under its strict CSP with no
console error, lists every view in its nav and routes between them."""

from __future__ import annotations

import httpx
import pytest

from tests.ui.conftest import ExplorerServer, OpenView

pytestmark = pytest.mark.slow

VIEWS = ["sessions", "timeline", "recall", "graph", "dynamics", "operator"]


def test_the_shell_is_public_and_holds_no_secret(explorer_server: ExplorerServer) -> None:
    for path in ("/ui", "/ui/", "/ui/app.js", "/ui/style.css", "/ui/views/sessions.js"):
        r = httpx.get(explorer_server.url + path)
        assert r.status_code == 200, path
        assert explorer_server.admin_key not in r.text
        assert explorer_server.user_key not in r.text
    csp = httpx.get(explorer_server.url + "/ui").headers["content-security-policy"]
    assert "script-src 'self';" in csp
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp


def test_every_view_is_in_the_nav_and_loads(
    explorer_server: ExplorerServer, open_view: OpenView
) -> None:
    with open_view(explorer_server, "#/sessions") as (page, problems):
        for name in VIEWS:
            page.locator(f'nav a[data-view="{name}"]').click()
            page.locator(f'.view[data-view="{name}"]').wait_for()
            assert page.locator(f'nav a[data-view="{name}"]').get_attribute("aria-current") == (
                "page"
            )
            page.wait_for_load_state("networkidle")
    assert problems.all() == []
