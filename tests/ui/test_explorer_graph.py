"""The explorer's Graph and Dynamics views in a real browser, against a real server.

The graph draws the seeded entities (counted in the Cytoscape instance behind the canvas),
a click on a node opens it, spreading activation colours the nodes it reaches; the dynamics
view draws a memory's retrievability curve, the session's histograms and what the last
consolidation merged. Sessions other than the shared seeded one are used where a test
writes (a superseded entity, a consolidation), so the other views' tests see the seed as
it was.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from tests.engine.topics import TOPICS
from tests.ui.conftest import ExplorerServer, OpenView, settle, wait_until

if TYPE_CHECKING:
    from playwright.sync_api import Page

pytestmark = pytest.mark.slow

Screenshot = Callable[["Page", str], Path]


def client_for(server: ExplorerServer, session: str) -> httpx.Client:
    return httpx.Client(
        base_url=server.url,
        headers={"X-API-Key": server.user_key, "X-Session-ID": session},
        timeout=60.0,
    )


def ok(r: httpx.Response) -> Any:
    assert r.status_code < 300, f"{r.request.url}: {r.text}"
    return r.json()


def cy(page: Page, script: str) -> Any:
    """Evaluate ``script`` with ``cy``, the graph view's Cytoscape instance."""
    return page.evaluate(
        f"() => {{ const cy = document.querySelector('.graph-canvas').wwCy; return {script}; }}"
    )


def click_node(page: Page, entity_id: str) -> None:
    """A real mouse click on the node where the canvas draws it."""
    x, y = cy(page, f"(p => [p.x, p.y])(cy.$id('{entity_id}').renderedPosition())")
    box = page.locator(".graph-canvas").bounding_box()
    assert box is not None
    page.mouse.click(box["x"] + x, box["y"] + y)


def open_graph(
    open_view: OpenView, server: ExplorerServer, hash_: str = "#/graph", **kw: Any
) -> Any:
    # The graph is a user's view: a user key, as an agent developer would have.
    kw.setdefault("key", server.user_key)
    return open_view(server, hash_, **kw)


def top(page: Page) -> None:
    page.evaluate("window.scrollTo(0, 0); document.getElementById('view').scrollTo(0, 0)")


def test_graph_renders_the_seeded_entities_and_a_click_opens_one(
    explorer_server: ExplorerServer, open_view: OpenView
) -> None:
    seed = explorer_server.seed.entities
    with open_graph(open_view, explorer_server) as (page, problems):
        page.locator(".graph-canvas[data-nodes]").wait_for()
        names = set(cy(page, "cy.nodes().map(n => n.data('name'))"))
        assert {"Billing service", "Postgres", "Alice", "Blue-green deployment"} <= names
        edges = cy(page, "cy.edges().map(e => [e.source().id(), e.target().id()])")
        assert [seed["billing"], seed["postgres"]] in edges
        assert [seed["alice"], seed["billing"]] in edges
        assert page.locator(".entity-list tbody tr").count() == len(names)

        click_node(page, seed["postgres"])
        details = page.locator(".graph-details [data-entity]")
        details.wait_for()
        assert details.get_attribute("data-entity") == seed["postgres"]
        assert page.locator(".graph-details .entity-name").inner_text() == "Postgres"
        assert page.locator(".graph-details table.history tbody tr").count() == 1
        assert seed["postgres"] in page.evaluate("location.hash")
        assert cy(page, "cy.$(':selected').map(n => n.id())") == [seed["postgres"]]
        # Panning and zooming are the canvas's own: the wheel zooms.
        before = cy(page, "cy.zoom()")
        box = page.locator(".graph-canvas").bounding_box()
        assert box is not None
        page.mouse.move(box["x"] + 40, box["y"] + 40)
        page.mouse.wheel(0, -400)
        wait_until(page, f"document.querySelector('.graph-canvas').wwCy.zoom() != {before}")
    assert problems.all() == [], "\n".join(problems.all())


def test_spreading_activation_colours_the_nodes_it_reaches(
    explorer_server: ExplorerServer, open_view: OpenView, screenshot: Screenshot
) -> None:
    seed = explorer_server.seed.entities
    with open_graph(open_view, explorer_server) as (page, problems):
        page.locator(".graph-canvas[data-nodes]").wait_for()
        page.locator(f'.entity-list tr[data-entity="{seed["billing"]}"]').click()
        page.locator(".graph-details .entity-name").wait_for()
        page.get_by_role("button", name="Spread activation", exact=True).click()
        page.locator(".graph-canvas[data-activated]").wait_for()
        heat = dict(cy(page, "cy.nodes('[heat]').map(n => [n.id(), n.data('heat')])"))
        # The seed and its three neighbours are reached; Postgres along the strongest edge
        # (0.9 * decay 0.8 = 0.72) is hotter than blue-green (0.6 * 0.8 = 0.48).
        assert {seed[k] for k in ("billing", "postgres", "bluegreen", "alice")} <= set(heat)
        assert heat[seed["billing"]] == "rgb(201, 42, 42)"
        assert len(set(heat.values())) >= 3
        row = page.locator(f'.entity-list tr[data-entity="{seed["postgres"]}"] td.num')
        assert row.inner_text().strip() == "0.72"
        assert cy(page, f"cy.$id('{seed['billing']}').hasClass('seed')") is True
        top(page)
        screenshot(page, "graph")
        page.get_by_role("button", name="Clear").click()
        wait_until(page, "!document.querySelector('.graph-canvas').dataset.activated")
        assert cy(page, "cy.nodes('[heat]').length") == 0
    assert problems.all() == [], "\n".join(problems.all())


def test_the_address_opens_a_node_and_spreads_from_it(
    explorer_server: ExplorerServer, open_view: OpenView
) -> None:
    seed = explorer_server.seed.entities
    with open_graph(open_view, explorer_server, f"#/graph?node={seed['alice']}&spread=1") as (
        page,
        problems,
    ):
        page.locator(".graph-canvas[data-activated]").wait_for()
        assert page.locator(".graph-details .entity-name").inner_text() == "Alice"
        assert cy(page, "cy.$('.seed').map(n => n.id())") == [seed["alice"]]
        # Two hops: Alice -> Billing (0.5 * 0.8) -> Postgres (0.9 * 0.8 more).
        row = page.locator(f'.entity-list tr[data-entity="{seed["postgres"]}"] td.num')
        assert row.inner_text().strip() == "0.288"
    assert problems.all() == [], "\n".join(problems.all())


def test_the_history_lists_every_version(
    explorer_server: ExplorerServer, open_view: OpenView
) -> None:
    session = "ui-graph-history"
    with client_for(explorer_server, session) as c:
        first = ok(c.post("/api/v1/entities", json={"name": "Release train", "summary": "weekly"}))
        second = ok(
            c.post(f"/api/v1/entities/{first['id']}/supersede", json={"summary": "fortnightly"})
        )
        third = ok(
            c.post(f"/api/v1/entities/{second['id']}/supersede", json={"name": "Release cadence"})
        )
    with open_graph(open_view, explorer_server, f"#/graph?node={third['id']}", session=session) as (
        page,
        problems,
    ):
        rows = page.locator(".graph-details table.history tbody tr")
        rows.nth(2).wait_for()
        assert rows.count() == 3
        assert page.locator(".graph-canvas").get_attribute("data-nodes") == "1"
        assert rows.nth(2).get_attribute("class") == "selected"
        # What changed from one version to the next is marked.
        assert rows.nth(1).locator("td.changed").inner_text() == "fortnightly"
        assert rows.nth(2).locator("td.changed").inner_text() == "Release cadence"
        assert "current" in rows.nth(2).inner_text() and "current" not in rows.nth(0).inner_text()
        page.get_by_role("button", name="Retrievability curve").click()
        chart = page.locator('.curve-chart[data-kind="entity"]')
        chart.wait_for()
    assert problems.all() == [], "\n".join(problems.all())


def test_dynamics_shows_the_curve_the_histograms_and_the_last_consolidation(
    explorer_server: ExplorerServer, open_view: OpenView, screenshot: Screenshot
) -> None:
    session = "ui-dynamics"
    texts = [t for group in TOPICS.values() for t in group]
    with client_for(explorer_server, session) as c:
        ids = [
            e["id"]
            for e in ok(
                c.post("/api/v1/episodes/batch", json={"episodes": [{"content": t} for t in texts]})
            )["episodes"]
        ]
        copy = ok(c.post("/api/v1/episodes", json={"content": texts[0]}))["id"]
        ok(c.post(f"/api/v1/episodes/{ids[0]}/mark-important", json={"importance": 0.9}))
        # Feedback spreads the values and the stabilities: one hit rewarded, the rest not.
        recall = ok(c.post("/api/v1/episodes/recall", json={"query": texts[0], "learn": True}))
        hits = [hit["id"] for hit in recall["hits"]]
        rewards = {"recall_id": recall["recall_id"], "reward": 0.0, "rewards": {hits[0]: 1.0}}
        ok(c.post("/api/v1/feedback", json=rewards))
        report = ok(c.post("/api/v1/consolidate", json={"min_cluster_size": 3}))
    assert report["entities_created"] >= 1 and len(report["duplicates_merged"]) == 1
    with open_view(
        explorer_server,
        f"#/dynamics?memory={ids[0]}",
        key=explorer_server.user_key,
        session=session,
    ) as (page, problems):
        chart = page.locator(".curve-chart[data-points]")
        chart.wait_for()
        assert chart.get_attribute("data-points") == "160"
        assert chart.get_attribute("data-kind") == "episode"
        assert page.locator(".curve-chart canvas").count() >= 1
        assert "reviews / lapses" in page.locator(".curve-facts").inner_text()
        value_bins = page.locator('svg[data-hist="value"] rect.bin')
        value_bins.first.wait_for(state="attached")
        filled = [int(value_bins.nth(i).get_attribute("data-count") or "") for i in range(10)]
        assert sum(1 for n in filled if n) >= 2  # rewarded above the start, the rest below
        for name in ("value", "stability"):
            bins = page.locator(f'svg[data-hist="{name}"] rect.bin')
            counts = [
                int(bins.nth(i).get_attribute("data-count") or "") for i in range(bins.count())
            ]
            # The duplicate was archived: the live episodes are the topics' ones.
            assert sum(counts) == len(texts), name
        merged = page.locator(".consolidation .merged")
        merged.first.wait_for()
        assert merged.count() == report["entities_created"]
        names = {e["name"] for e in report["entities"]}
        assert {
            merged.nth(i).locator("a.merged-entity").inner_text() for i in range(merged.count())
        } == names
        dup = page.locator(".consolidation table.duplicates tbody tr")
        assert dup.count() == 1 and texts[0][:40] in dup.inner_text()
        # Each quoted episode opens in the Timeline view.
        href = dup.locator("td").first.locator("a").get_attribute("href")
        assert href == f"#/timeline?id={copy}&archived=1"
        screenshot(page, "dynamics")
        # Picking another memory redraws the curve in place.
        page.locator('select[name="memory"]').select_option(ids[5])
        wait_until(page, f"location.hash.includes('{ids[5]}')")
        chart.wait_for()
    assert problems.all() == [], "\n".join(problems.all())


def test_the_curve_follows_the_window_and_goes_with_its_view(
    explorer_server: ExplorerServer, open_view: OpenView
) -> None:
    """uPlot draws at a fixed size: the view resizes it with its column (a ResizeObserver)
    and destroys it when another view replaces it (render's cleanup)."""
    episode = explorer_server.seed.episodes["rollout"]
    with open_view(
        explorer_server, f"#/dynamics?memory={episode}", key=explorer_server.user_key
    ) as (page, problems):
        chart = page.locator(".curve-chart[data-width]")
        chart.wait_for()
        wide = int(chart.get_attribute("data-width") or "")
        canvas = page.locator(".curve-chart canvas").first
        page.set_viewport_size({"width": 900, "height": 860})
        wait_until(page, f"Number(document.querySelector('.curve-chart').dataset.width) < {wide}")
        narrow = int(chart.get_attribute("data-width") or "")
        column = page.evaluate("document.querySelector('.curve-chart').clientWidth")
        assert narrow == max(240, column)
        box = canvas.bounding_box()
        assert box is not None and box["width"] <= narrow + 1
        page.set_viewport_size({"width": 1360, "height": 860})
        wait_until(page, f"Number(document.querySelector('.curve-chart').dataset.width) > {narrow}")
        held = chart.element_handle()
        assert held.evaluate("c => c.querySelector('.uplot') !== null")
        page.locator('nav a[data-view="sessions"]').click()
        page.locator('.view[data-view="sessions"][data-ready]').wait_for()
        # The replaced view's plot is destroyed; a resize after it wakes nothing.
        assert held.evaluate("c => c.querySelector('.uplot') === null")
        page.set_viewport_size({"width": 1000, "height": 700})
        settle(page)
    assert problems.all() == [], "\n".join(problems.all())
