"""Fixtures for the explorer's browser tests (``/ui``), shared by every view's tests.

- ``explorer_server`` (session scope): a real ``python -m ww.api.server`` on 127.0.0.1 with
  a user key and an admin key, seeded through the API in session ``SESSION``. An
  ``ExplorerServer`` gives ``url``, ``session``, ``user_key``, ``admin_key`` and ``seed``
  (the ids of what was stored: ``seed.episodes`` by name, ``seed.entities`` by name,
  ``seed.skill``), plus ``client(key)`` for calls from the test.
- ``production_server`` (session scope): the same, started with
  ``WW_ENVIRONMENT=production`` and nothing seeded.
- ``open_view(server, "#/recall?q=x", key=..., session=...)``: a context manager (from the
  ``open_view`` fixture) that opens the explorer at a view with the key and session already
  in the tab's sessionStorage (``key=None``: no key), yielding ``(page, problems)`` as
  ``tests.browser.open_page`` does.
- ``settle(page)``: waits until the current view has rendered (``.view[data-ready]``) and
  no API call is in flight (``<html data-pending>`` gone). Use it after a hash change,
  where playwright's ``wait_for_load_state`` returns at once.
- ``screenshot(page, name, full_page=False)``: saves ``<name>.png`` into a temporary
  folder, or into the folder ``EXPLORER_SCREENSHOTS`` names
  (``EXPLORER_SCREENSHOTS=docs/explorer`` refreshes the pictures docs/explorer.md shows).

What is seeded (``SEED_EPISODES``, ``SEED_ENTITIES``, ``SEED_RELATIONS``, ``SEED_SKILL``):
five episodes of three speakers with distinct ``tag`` metadata, outcomes and times, four
entities with three relations, and one skill. ``RECALL_QUERY`` ranks the episode
``"rollout"`` first.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from tests.browser import PageProblems, open_page
from tests.e2e.conftest import Server

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

__all__ = [
    "ADMIN_KEY",
    "RECALL_QUERY",
    "SESSION",
    "USER_KEY",
    "ExplorerServer",
    "Seed",
    "settle",
    "started_server",
    "unnamed_controls",
    "wait_until",
]

SESSION = "ui-demo"
USER_KEY = "ww_explorer-user-key-0123456789abcdef"
ADMIN_KEY = "ww_explorer-admin-key-0123456789abcdef"
# Matches the sessionStorage names of static/explorer/app.js.
KEY_STORE = "ww.explorer.key"
SESSION_STORE = "ww.explorer.session"
RECALL_QUERY = "blue-green rollout of the billing service"
SCREENSHOTS_ENV = "EXPLORER_SCREENSHOTS"

_NOW = datetime.now(UTC).replace(microsecond=0)
SEED_EPISODES: dict[str, dict[str, Any]] = {
    "rollout": {
        "content": "Deployed the billing service to production with a blue-green rollout",
        "speaker": "alice",
        "outcome": "success",
        "importance": 0.8,
        "metadata": {"tag": "deploy"},
        "context": {"project": "billing"},
        "timestamp": (_NOW - timedelta(days=6)).isoformat(),
    },
    "migration": {
        "content": "The database migration failed because the disk on db-2 was full",
        "speaker": "bob",
        "outcome": "failure",
        "importance": 0.7,
        "metadata": {"tag": "incident"},
        "context": {"project": "billing"},
        "timestamp": (_NOW - timedelta(days=4)).isoformat(),
    },
    "preference": {
        "content": "Alice prefers rollbacks to be scripted with the deploy tool",
        "speaker": "alice",
        "metadata": {"tag": "preference"},
        "timestamp": (_NOW - timedelta(days=3)).isoformat(),
    },
    "planning": {
        "content": "Weekly planning: prioritise the search latency work next sprint",
        "speaker": "carol",
        "metadata": {"tag": "planning"},
        "context": {"project": "search"},
        "timestamp": (_NOW - timedelta(days=2)).isoformat(),
    },
    "flaky": {
        "content": "Fixed the flaky payment test by pinning the clock in the fixture",
        "speaker": "bob",
        "outcome": "success",
        "metadata": {"tag": "testing"},
        "context": {"project": "billing"},
        "timestamp": (_NOW - timedelta(hours=20)).isoformat(),
    },
}
SEED_ENTITIES: dict[str, dict[str, Any]] = {
    "billing": {"name": "Billing service", "entity_type": "PROJECT", "summary": "Invoices"},
    "postgres": {"name": "Postgres", "entity_type": "TOOL", "summary": "The database"},
    "alice": {"name": "Alice", "entity_type": "PERSON", "summary": "Runs the deploys"},
    "bluegreen": {
        "name": "Blue-green deployment",
        "entity_type": "TECHNIQUE",
        "summary": "Two environments, switch traffic",
    },
}
# (source, relation type, target, weight)
SEED_RELATIONS: list[tuple[str, str, str, float]] = [
    ("billing", "USES", "postgres", 0.9),
    ("billing", "USES", "bluegreen", 0.6),
    ("alice", "RELATED_TO", "billing", 0.5),
]
SEED_SKILL: dict[str, Any] = {
    "name": "rollback-billing",
    "domain": "deploy",
    "task": "Roll the billing service back to the previous release",
    "steps": [
        {"order": 1, "action": "switch traffic to the blue environment"},
        {"order": 2, "action": "check the error rate"},
    ],
}


@dataclass
class Seed:
    """Ids of the seeded memories."""

    episodes: dict[str, str] = field(default_factory=dict)
    entities: dict[str, str] = field(default_factory=dict)
    skill: str = ""


@dataclass
class ExplorerServer:
    url: str
    session: str = SESSION
    user_key: str = USER_KEY
    admin_key: str = ADMIN_KEY
    seed: Seed = field(default_factory=Seed)

    def client(self, key: str | None = None) -> httpx.Client:
        """An httpx client for this server acting in ``session`` with ``key`` (admin by
        default)."""
        return httpx.Client(
            base_url=self.url,
            headers={"X-API-Key": key or self.admin_key, "X-Session-ID": self.session},
            timeout=30.0,
        )


def _checked(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code < 300, f"{response.request.url}: {response.text}"
    data: dict[str, Any] = response.json()
    return data


def seed(server: ExplorerServer) -> None:
    with server.client() as c:
        for name, body in SEED_EPISODES.items():
            server.seed.episodes[name] = _checked(c.post("/api/v1/episodes", json=body))["id"]
        for name, body in SEED_ENTITIES.items():
            server.seed.entities[name] = _checked(c.post("/api/v1/entities", json=body))["id"]
        for source, kind, target, weight in SEED_RELATIONS:
            _checked(
                c.post(
                    f"/api/v1/entities/{server.seed.entities[source]}/relations",
                    json={
                        "target_id": server.seed.entities[target],
                        "relation_type": kind,
                        "weight": weight,
                    },
                )
            )
        server.seed.skill = _checked(c.post("/api/v1/skills", json=SEED_SKILL))["id"]


def _start(tmp: Path, **env: str) -> Server:
    server = Server(tmp / "data", tmp / "server.log")
    # A high limit: the views call the API many times a test.
    server.start(
        WW_API_KEY=USER_KEY, WW_ADMIN_KEY=ADMIN_KEY, WW_RATE_LIMIT="100000/minute", **env
    ).wait_ready()
    return server


@pytest.fixture(scope="session")
def explorer_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ExplorerServer]:
    process = _start(tmp_path_factory.mktemp("explorer-server"))
    try:
        server = ExplorerServer(process.url)
        seed(server)
        yield server
    finally:
        process.cleanup()


@contextmanager
def started_server(tmp: Path, **env: str) -> Iterator[ExplorerServer]:
    """A server of its own (nothing seeded) with ``env`` added to the usual keys."""
    process = _start(tmp, **env)
    try:
        yield ExplorerServer(process.url)
    finally:
        process.cleanup()


@pytest.fixture(scope="session")
def production_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ExplorerServer]:
    with started_server(
        tmp_path_factory.mktemp("explorer-prod"), WW_ENVIRONMENT="production"
    ) as server:
        yield server


def storage_script(key: str | None, session: str | None) -> str:
    """A script putting ``key`` and ``session`` in the tab's sessionStorage before the page
    runs (None: leaves that entry out)."""
    lines = []
    for name, value in ((KEY_STORE, key), (SESSION_STORE, session)):
        if value is not None:
            lines.append(f"sessionStorage.setItem({json.dumps(name)}, {json.dumps(value)});")
    return "\n".join(lines)


def settle(page: Page) -> None:
    """Wait until the view has rendered and no API call of the page is in flight."""
    page.locator(".view[data-ready]").wait_for()
    # A selector, not wait_for_function: the page's CSP forbids evaluating strings.
    page.locator("html[data-pending]").wait_for(state="detached")


# The controls of the page a screen reader could not name: an input, select or textarea
# with no <label>, aria-label(ledby) or title; a button or link with no text or label.
_UNNAMED = """() => [...document.querySelectorAll(
    "input:not([type=hidden]), select, textarea, button, a[href]")]
  .filter((el) => el.getClientRects().length)
  .filter((el) => {
    const aria = (el.getAttribute("aria-label") || "").trim() || el.getAttribute("aria-labelledby");
    if (aria || (el.getAttribute("title") || "").trim()) return false;
    if (["INPUT", "SELECT", "TEXTAREA"].includes(el.tagName))
      return !(el.labels && [...el.labels].some((l) => l.textContent.trim()));
    return !el.textContent.trim();
  })
  .map((el) => el.outerHTML.slice(0, 120))"""


def unnamed_controls(page: Page) -> list[str]:
    found: list[str] = page.evaluate(_UNNAMED)
    return found


def wait_until(page: Page, expression: str, timeout_ms: int = 30_000) -> None:
    """Wait until ``expression`` is truthy in the page. Polled from here through
    ``page.evaluate`` (the debugger's evaluation, outside the page's CSP): playwright's
    ``wait_for_function`` polls by evaluating a string inside the page, which the strict
    CSP refuses as soon as the first check is false."""
    step = 50
    for _ in range(timeout_ms // step):
        if page.evaluate(expression):
            return
        page.wait_for_timeout(step)
    raise AssertionError(f"still false after {timeout_ms} ms: {expression}")


OpenView = Callable[..., AbstractContextManager[tuple["Page", PageProblems]]]


@pytest.fixture
def open_view(browser: Browser) -> OpenView:
    @contextmanager
    def opener(
        server: ExplorerServer,
        hash_: str = "#/sessions",
        *,
        key: str | None = ADMIN_KEY,
        session: str | None = SESSION,
    ) -> Iterator[tuple[Page, PageProblems]]:
        with open_page(browser, f"{server.url}/ui{hash_}", storage_script(key, session)) as (
            page,
            problems,
        ):
            page.set_viewport_size({"width": 1360, "height": 860})
            yield page, problems

    return opener


@pytest.fixture(scope="session")
def screenshot_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    chosen = os.environ.get(SCREENSHOTS_ENV)
    if chosen:
        path = Path(chosen)
        path.mkdir(parents=True, exist_ok=True)
        return path
    return tmp_path_factory.mktemp("explorer-screenshots")


@pytest.fixture
def screenshot(screenshot_dir: Path) -> Callable[..., Path]:
    def save(page: Page, name: str, *, full_page: bool = False) -> Path:
        path = screenshot_dir / f"{name}.png"
        page.screenshot(path=str(path), full_page=full_page)
        assert path.stat().st_size > 0
        return path

    return save
