"""The explorer's shell (``/ui``) in a real browser: it loads under its strict CSP with no
console error, lists every view in its nav and routes between them."""

from __future__ import annotations

import json
import re

import httpx
import pytest

from tests.ui.conftest import (
    ExplorerServer,
    OpenView,
    settle,
    started_server,
    unnamed_controls,
)

BOUND_KEY = "ww_explorer-bound-key-0123456789abcdef"

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


@pytest.mark.parametrize("who", ["admin", "user"])
def test_every_view_is_in_the_nav_and_loads(
    explorer_server: ExplorerServer, open_view: OpenView, who: str
) -> None:
    """With either key every view renders with no console error, no refused request and no
    CSP violation: a user's page never calls an admin-only route."""
    key = explorer_server.admin_key if who == "admin" else explorer_server.user_key
    with open_view(explorer_server, "#/sessions", key=key) as (page, problems):
        for name in VIEWS:
            page.locator(f'nav a[data-view="{name}"]').click()
            page.locator(f'.view[data-view="{name}"]').wait_for()
            assert page.locator(f'nav a[data-view="{name}"]').get_attribute("aria-current") == (
                "page"
            )
            settle(page)
            # A missing field shows as a dash, never as JavaScript's words for nothing.
            shown = page.locator("#view").inner_text()
            assert not re.search(r"\b(null|undefined|NaN)\b", shown), (name, shown)
            assert unnamed_controls(page) == [], name
            if who == "user":
                assert page.locator("#flags-table, #sessions-table").count() == 0
        # The session picker offers the sessions to an admin; a user types its session.
        options = page.locator("#session-options option")
        if who == "admin":
            assert explorer_server.session in options.evaluate_all("os => os.map(o => o.value)")
        else:
            assert options.count() == 0
    assert problems.all() == [], "\n".join(problems.all())


def test_a_key_bound_to_sessions_is_offered_its_own(
    tmp_path_factory: pytest.TempPathFactory, open_view: OpenView
) -> None:
    """A bound user key (WW_API_KEYS) gets its sessions in the picker, from whoami."""
    keys = [{"id": "bound", "key": BOUND_KEY, "sessions": ["team-a", "team-b"]}]
    tmp = tmp_path_factory.mktemp("explorer-bound")
    with started_server(tmp, WW_API_KEYS=json.dumps(keys)) as server:
        for session in ("team-a", "team-b"):
            with server.client(BOUND_KEY) as c:
                c.headers["X-Session-ID"] = session
                assert c.post("/api/v1/episodes", json={"content": session}).status_code == 201
        with open_view(server, "#/sessions", key=BOUND_KEY, session="team-a") as (page, problems):
            settle(page)
            options = page.locator("#session-options option")
            assert options.evaluate_all("os => os.map(o => o.value)") == ["team-a", "team-b"]
            links = page.locator("#view a[data-session]")
            assert links.evaluate_all("ls => ls.map(a => a.textContent)") == ["team-a", "team-b"]
            links.nth(1).click()
            page.locator(".card", has_text="Session team-b").wait_for()
            settle(page)
    assert problems.all() == [], "\n".join(problems.all())
