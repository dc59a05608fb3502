"""A real headless browser for tests: Debian's ``chromium`` driven through playwright.

Only the system's browser is used (``shutil.which("chromium")``); playwright's own browser
downloads are never run, so the suite needs nothing from the network. Where chromium or
playwright is missing a test skips with how to get it, and fails under ``CI`` (which
installs both: ``.ci/run`` and the dev extra).

``open_page`` loads a URL in a fresh context and gathers what would tell a broken page:
console errors and warnings, uncaught exceptions, failed or refused requests, and every
``securitypolicyviolation`` event (a Content-Security-Policy that blocks a script, a style
or an image).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

__all__ = ["PageProblems", "chromium_path", "launch_chromium", "open_page"]

# Runs before any script of the page: records CSP violations where the test can read them.
_CSP_LISTENER = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (e) => {
  window.__cspViolations.push(
    `${e.effectiveDirective} blocked ${e.blockedURI || "inline"} (${e.sourceFile}:${e.lineNumber})`
  );
});
"""
LOAD_TIMEOUT_MS = 30_000


def _unavailable(problem: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(problem, pytrace=False)
    pytest.skip(problem)


def chromium_path() -> str:
    """The system's chromium, or skip (fail under CI) with how to install it."""
    path = shutil.which("chromium")
    if path is None:
        _unavailable("chromium is not installed (Debian: apt-get install chromium)")
    assert path is not None
    return path


@contextmanager
def launch_chromium() -> Iterator[Browser]:
    """A headless chromium, closed on exit."""
    executable = chromium_path()
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("playwright is not installed (pip install -e '.[dev]')")
    with sync_playwright() as pw:
        # --no-sandbox: chromium refuses its sandbox as root, which containers and CI run as.
        browser = pw.chromium.launch(
            executable_path=executable, headless=True, args=["--no-sandbox"]
        )
        try:
            yield browser
        finally:
            browser.close()


@dataclass
class PageProblems:
    """What went wrong while a page loaded and ran; all empty for a healthy page."""

    console: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    csp: list[str] = field(default_factory=list)

    def all(self) -> list[str]:
        return self.console + self.errors + self.requests + self.csp


@contextmanager
def open_page(
    browser: Browser, url: str, init_script: str | None = None
) -> Iterator[tuple[Page, PageProblems]]:
    """``url`` loaded (network idle) in a fresh context; read ``problems`` after the checks
    of the page, since scripts may still report then. Closes the context on exit.

    ``init_script`` runs before the page's own scripts (e.g. to put a key in its
    sessionStorage)."""
    problems = PageProblems()
    context = browser.new_context()
    try:
        page = context.new_page()
        page.set_default_timeout(LOAD_TIMEOUT_MS)
        page.add_init_script(_CSP_LISTENER)
        if init_script is not None:
            page.add_init_script(init_script)
        page.on(
            "console",
            lambda m: (
                problems.console.append(f"{m.type}: {m.text}")
                if m.type in ("error", "warning")
                else None
            ),
        )
        page.on("pageerror", lambda e: problems.errors.append(str(e)))
        page.on(
            "requestfailed",
            lambda r: problems.requests.append(f"{r.method} {r.url}: {r.failure}"),
        )

        def on_response(response: Any) -> None:
            if response.status >= 400:
                problems.requests.append(f"{response.status} {response.url}")

        page.on("response", on_response)
        page.goto(url, wait_until="networkidle")
        yield page, problems
        problems.csp += page.evaluate("window.__cspViolations")
    finally:
        context.close()
