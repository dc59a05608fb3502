"""The explorer's sessions, timeline, recall and operator views in a real browser against a
seeded server: each loads with no console error, shows what the API holds, and its
controls act through the API. Each test saves a screenshot (``screenshot`` fixture)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from urllib.parse import quote

import pytest

try:
    from playwright.sync_api import expect
except ImportError:  # the browser fixture skips (fails under CI) with how to install it
    expect = None  # type: ignore[assignment]

from tests.ui.conftest import (
    RECALL_QUERY,
    SEED_EPISODES,
    SESSION,
    ExplorerServer,
    OpenView,
    settle,
)

pytestmark = pytest.mark.slow

Shot = Callable[..., Path]


def access_count(server: ExplorerServer, episode_id: str) -> int:
    with server.client() as c:
        count: int = c.get(f"/api/v1/episodes/{episode_id}").json()["access_count"]
    return count


def test_sessions_lists_counts_and_picks_a_session(
    explorer_server: ExplorerServer, open_view: OpenView, screenshot: Shot
) -> None:
    with open_view(explorer_server, "#/sessions", session=None) as (page, problems):
        row = page.locator(f'#sessions-table tr[data-session="{SESSION}"]')
        expect(row).to_be_visible()
        cells = row.locator("td")
        expect(cells.nth(1)).to_have_text("5")  # episodes
        expect(cells.nth(4)).to_have_text("4")  # entity versions
        expect(cells.nth(5)).to_have_text("1")  # skills
        row.click()
        expect(page.locator("#session-input")).to_have_value(SESSION)
        expect(page.locator(".card h2", has_text=f"Session {SESSION}")).to_be_visible()
        assert page.evaluate("sessionStorage.getItem('ww.explorer.session')") == SESSION
        settle(page)
        screenshot(page, "sessions")
    assert problems.all() == []


def test_timeline_filters_and_opens_an_episode_with_its_learning_state(
    explorer_server: ExplorerServer, open_view: OpenView, screenshot: Shot
) -> None:
    with open_view(explorer_server, "#/timeline") as (page, problems):
        expect(page.locator(".timeline-chart circle.dot")).to_have_count(5)
        page.locator('#timeline-filters input[name="speaker"]').fill("alice")
        page.locator("#timeline-filters button[type=submit]").click()
        expect(page.locator("#episodes-table tbody tr")).to_have_count(2)
        page.locator('#timeline-filters input[name="speaker"]').fill("")
        page.locator('#timeline-filters input[name="tags"]').fill("incident")
        page.locator("#timeline-filters button[type=submit]").click()
        expect(page.locator("#episodes-table tbody tr")).to_have_count(1)
        page.locator('#timeline-filters input[name="tags"]').fill("")
        page.locator('#timeline-filters select[name="outcome"]').select_option("success")
        page.locator("#timeline-filters button[type=submit]").click()
        expect(page.locator("#episodes-table tbody tr")).to_have_count(2)
        page.locator('#timeline-filters select[name="outcome"]').select_option("")
        # A time range: the day of the planning episode only.
        planning = SEED_EPISODES["planning"]["timestamp"]
        day = datetime.fromisoformat(planning).astimezone()  # the page's zone is the host's
        for name, at in (("from", day - timedelta(hours=12)), ("to", day + timedelta(hours=12))):
            page.locator(f'#timeline-filters input[name="{name}"]').fill(
                at.strftime("%Y-%m-%dT%H:%M")
            )
        page.locator("#timeline-filters button[type=submit]").click()
        expect(page.locator("#episodes-table tbody tr")).to_have_count(1)
        expect(page.locator("#episodes-table tbody tr")).to_contain_text("Weekly planning")
        page.locator('#timeline-filters input[name="text"]').fill("flaky")
        page.locator("#timeline-filters button[type=submit]").click()
        expect(page.locator(".card", has_text="No episode matches")).to_be_visible()
        page.evaluate("location.hash = '#/timeline?outcome=success'")
        expect(page.locator("#episodes-table tbody tr")).to_have_count(2)
        rollout = explorer_server.seed.episodes["rollout"]
        page.locator(f'#episodes-table tr[data-id="{rollout}"]').click()
        detail = page.locator(f'#episode-detail[data-id="{rollout}"]')
        expect(detail).to_contain_text("blue-green rollout")
        expect(page.locator("#learning-state")).to_contain_text("Retrievability")
        expect(page.locator("#learning-state")).to_contain_text("Stability")
        # Its neighbours in time are listed as links to them.
        expect(page.locator("#episode-links ul.links li")).to_have_count(1)
        # Opened by link, with no filter: every episode on the axis, this one selected.
        page.evaluate(f"location.hash = '#/timeline?id={rollout}'")
        expect(page.locator(".timeline-chart circle.dot.selected")).to_have_attribute(
            "data-id", rollout
        )
        expect(page.locator(".timeline-chart circle.dot")).to_have_count(5)
        expect(
            page.locator(f'#episode-detail[data-id="{rollout}"] #learning-state')
        ).to_be_visible()
        screenshot(page, "timeline")
    assert problems.all() == []


def test_recall_shows_the_seeded_hit_first_with_score_bars_and_reads_only(
    explorer_server: ExplorerServer, open_view: OpenView, screenshot: Shot
) -> None:
    rollout = explorer_server.seed.episodes["rollout"]
    before = access_count(explorer_server, rollout)
    with open_view(explorer_server, f"#/recall?q={quote(RECALL_QUERY)}&types=episode") as (
        page,
        problems,
    ):
        first = page.locator("#recall-results li.hit").first
        expect(first).to_have_attribute("data-id", rollout)
        segments = first.locator(".score-bar span[data-part]")
        assert segments.count() >= 3
        expect(first.locator('.score-bar span[data-part="semantic"]')).to_be_visible()
        # Each part of value v fills v/n of the bar (n parts): the filled length is the mean.
        with explorer_server.client() as c:
            body = {"query": RECALL_QUERY, "memory_types": ["episode"], "learn": False}
            parts = c.post("/api/v1/recall", json=body).json()["hits"][0]["score_parts"]
        n = max(len(parts), sum(v for v in parts.values() if v > 0))
        bar = first.locator(".score-bar").bounding_box()
        assert bar is not None
        for i in range(segments.count()):
            box = segments.nth(i).bounding_box()
            value = parts[segments.nth(i).get_attribute("data-part") or ""]
            assert box is not None
            assert box["width"] == pytest.approx(bar["width"] * value / n, abs=1.5)
        # Read-only by default: no feedback possible, and nothing recorded.
        expect(page.locator("#learn-switch")).not_to_be_checked()
        expect(first.locator("button.thumb.up")).to_be_disabled()
        settle(page)
        screenshot(page, "recall")
    assert access_count(explorer_server, rollout) == before
    assert problems.all() == []


def test_feedback_from_the_page_changes_the_value_shown(
    explorer_server: ExplorerServer, open_view: OpenView, screenshot: Shot
) -> None:
    rollout = explorer_server.seed.episodes["rollout"]
    with open_view(explorer_server, "#/recall") as (page, problems):
        page.locator("#learn-switch").check()
        for kind in ("entity", "skill"):
            page.locator(f'#recall-form input[name="types"][value="{kind}"]').uncheck()
        page.locator('#recall-form input[name="query"]').fill(RECALL_QUERY)
        page.locator("#recall-form button[type=submit]").click()
        first = page.locator("#recall-results li.hit").first
        expect(first).to_have_attribute("data-id", rollout)
        shown_before = float(first.locator(".value").inner_text().split()[-1])
        first.locator("button.thumb.up").click()
        change = page.locator(f'#feedback-result li[data-id="{rollout}"]')
        expect(change).to_be_visible()
        value_before = float(change.locator(".value-before").inner_text())
        value_after = float(change.locator(".value-after").inner_text())
        assert value_after > value_before
        assert value_before == pytest.approx(shown_before, abs=1e-3)
        after = page.locator(f'#ranked-after li.hit[data-id="{rollout}"]')
        expect(after).to_have_attribute("data-rank", "1")
        shown_after = float(after.locator(".value").inner_text().split()[-1])
        # The same question ranks with the query-tied value: the mean of the memory's new
        # value and the rating just given (1).
        assert shown_after == pytest.approx((value_after + 1.0) / 2, abs=2e-3)
        settle(page)
        screenshot(page, "recall-feedback", full_page=True)
    assert problems.all() == []


def test_operator_switches_a_flag_and_shows_health_and_circuits(
    explorer_server: ExplorerServer, open_view: OpenView, screenshot: Shot
) -> None:
    with open_view(explorer_server, "#/operator") as (page, problems):
        expect(page.locator("#health")).to_contain_text("ok")
        expect(page.locator("#emergency-level")).to_contain_text("NONE")
        expect(page.locator("#circuits-table tr[data-circuit=database]")).to_contain_text("closed")
        expect(page.locator("#rate-limit")).to_contain_text("left")
        switch = page.locator('#flags-table input[data-flag="hebbian"]')
        was = switch.is_checked()
        switch.click()
        expect(switch).to_be_checked(checked=not was)
        expect(switch).to_be_enabled()
        with explorer_server.client() as c:
            assert c.get("/api/v1/control/flags/hebbian").json()["enabled"] is (not was)
        switch.click()
        expect(switch).to_be_checked(checked=was)
        expect(switch).to_be_enabled()
        page.reload(wait_until="networkidle")
        expect(page.locator("#flags-table")).to_be_visible()
        expect(page.locator("text=hebbian:").first).to_be_visible()  # the audit's two changes
        screenshot(page, "operator")
    with explorer_server.client() as c:
        assert c.get("/api/v1/control/flags/hebbian").json()["enabled"] is was
    assert problems.all() == []


def test_operator_sets_and_lifts_the_read_only_level(
    explorer_server: ExplorerServer, open_view: OpenView
) -> None:
    try:
        with open_view(explorer_server, "#/operator") as (page, problems):
            expect(page.locator("#emergency-level")).to_contain_text("NONE")
            limited = page.get_by_role("button", name="Read-only (LIMITED)")
            limited.click()  # no reason yet: refused in the page, nothing sent
            expect(page.locator("#emergency-level")).to_contain_text("NONE")
            page.locator("#emergency-reason").fill("explorer test")
            limited.click()
            expect(page.locator("#emergency-level")).to_contain_text("LIMITED")
            expect(page.locator("#emergency-level")).to_contain_text("explorer test")
            with explorer_server.client() as c:
                assert c.get("/api/v1/control/emergency").json()["level"] == "LIMITED"
            page.get_by_role("button", name="Recover").click()
            expect(page.locator("#emergency-level")).to_contain_text("NONE")
            settle(page)
        assert problems.all() == []
    finally:
        with explorer_server.client() as c:
            if c.get("/api/v1/control/emergency").json()["level"] != "NONE":
                c.post("/api/v1/control/emergency/recover", json={"level": "NONE"})


def test_a_user_key_sees_that_the_operator_view_needs_an_admin_key(
    explorer_server: ExplorerServer, open_view: OpenView
) -> None:
    with open_view(explorer_server, "#/operator", key=explorer_server.user_key) as (
        page,
        problems,
    ):
        expect(page.locator("#operator-admin-only")).to_contain_text("need an admin key")
        expect(page.locator("#health")).to_contain_text("ok")  # health is open to all
        settle(page)
        assert page.locator("#flags-table, #circuits-table").count() == 0
    # The page knows the key is a user's (whoami): it asks for no control route at all.
    assert problems.all() == [], "\n".join(problems.all())


def test_production_asks_for_a_key_and_keeps_it_in_session_storage(
    production_server: ExplorerServer, open_view: OpenView, screenshot: Shot
) -> None:
    with open_view(production_server, "#/sessions", key=None, session=None) as (page, problems):
        dialog = page.locator("#key-dialog")
        expect(dialog).to_be_visible()
        screenshot(page, "key-prompt")
        page.locator("#key-input").fill(production_server.admin_key)
        page.locator("#key-dialog button[value=save]").click()
        expect(dialog).to_be_hidden()
        expect(page.locator("#key-state")).to_have_text("key set")
        expect(page.locator(".card", has_text="All sessions")).to_contain_text("No sessions")
        stored = page.evaluate("sessionStorage.getItem('ww.explorer.key')")
        assert stored == production_server.admin_key
        assert page.evaluate("localStorage.length") == 0
        assert production_server.admin_key not in page.content()
        settle(page)
    # Only the calls made before the key was typed were refused.
    assert problems.errors == [] and problems.csp == []
    assert problems.requests and all(r.startswith("401 ") for r in problems.requests)
    assert all("401" in line for line in problems.console)


def test_production_with_a_user_key_offers_no_admin_route(
    production_server: ExplorerServer, open_view: OpenView
) -> None:
    """A user key typed into the prompt: the page learns the role (whoami) and then asks
    nothing an admin key would be needed for, on the Sessions and Operator views alike."""
    with open_view(production_server, "#/sessions", key=None, session="prod-user") as (
        page,
        problems,
    ):
        expect(page.locator("#key-dialog")).to_be_visible()
        page.locator("#key-input").fill(production_server.user_key)
        page.locator("#key-dialog button[value=save]").click()
        expect(page.locator("#sessions-admin-only")).to_be_visible()
        settle(page)
        page.locator('nav a[data-view="operator"]').click()
        expect(page.locator("#operator-admin-only")).to_be_visible()
        settle(page)
        assert page.evaluate("localStorage.length") == 0
        assert production_server.user_key not in page.content()
    # Only the calls made before the key was typed were refused, each with 401, never 403;
    # the empty session's stats answer 404 (nothing stored yet).
    assert problems.errors == [] and problems.csp == []
    refused = [r.split()[0] for r in problems.requests]
    assert "401" in refused and set(refused) <= {"401", "404"}, problems.requests
