"""Memory content is data, never markup: hostile text stored through the API shows as text in
every view that quotes it, runs no script, loads no image and leaves no console error."""

from __future__ import annotations

import re
from urllib.parse import quote

import pytest

from tests.ui.conftest import ExplorerServer, OpenView, settle, unnamed_controls

pytestmark = pytest.mark.slow

SESSION = "ui-hostile"
# Each would set window.__xss (or fetch /x) if a view put it into the page as HTML.
SCRIPT = "<script>window.__xss = 'script'</script> billing deploy note"
IMAGE = "<img src=x onerror=\"window.__xss = 'img'\"> billing rollback note"
ENTITY = "<img src=x onerror=\"window.__xss = 'entity'\">"
SUMMARY = "<svg onload=\"window.__xss = 'svg'\"></svg> summary"

# Elements the payloads would have made had a view parsed them (the views' own <b> and <i>
# hold other text).
PLANTED = """() => [...document.querySelectorAll(
    "#view script, #view img, #view [onerror], #view [onload], #view b, #view i")]
  .filter((el) => !["B", "I"].includes(el.tagName) || ["bold", "x"].includes(el.textContent))
  .map((el) => el.outerHTML)"""


def _seed(server: ExplorerServer) -> dict[str, str]:
    with server.client(server.user_key) as c:
        c.headers["X-Session-ID"] = SESSION
        ids = {}
        for name, body in {
            "script": {"content": SCRIPT, "metadata": {"tag": "<b>bold</b>"}},
            "image": {"content": IMAGE, "context": {"project": "<i>x</i>"}},
        }.items():
            r = c.post("/api/v1/episodes", json=body)
            assert r.status_code == 201, r.text
            ids[name] = r.json()["id"]
        r = c.post("/api/v1/entities", json={"name": ENTITY, "summary": SUMMARY})
        assert r.status_code == 201, r.text
        ids["entity"] = r.json()["id"]
        r = c.post("/api/v1/entities", json={"name": "Billing", "summary": "plain"})
        other = r.json()["id"]
        r = c.post(
            f"/api/v1/entities/{ids['entity']}/relations",
            json={"target_id": other, "relation_type": "RELATED_TO", "weight": 0.5},
        )
        assert r.status_code == 201, r.text
    return ids


def test_hostile_content_renders_as_text_everywhere(
    explorer_server: ExplorerServer, open_view: OpenView
) -> None:
    ids = _seed(explorer_server)
    views = {
        f"#/timeline?id={ids['script']}": [SCRIPT, "<b>bold</b>"],
        f"#/timeline?id={ids['image']}": [IMAGE],
        f"#/recall?q={quote('billing deploy rollback note')}&types=episode,entity": [
            SCRIPT,
            IMAGE,
        ],
        f"#/graph?node={ids['entity']}": [ENTITY, SUMMARY],
        f"#/dynamics?memory={ids['image']}": [],
        "#/sessions": [],
    }
    with open_view(
        explorer_server, "#/sessions", key=explorer_server.user_key, session=SESSION
    ) as (
        page,
        problems,
    ):
        for hash_, texts in views.items():
            page.evaluate(f"location.hash = {hash_!r}")
            settle(page)
            shown = page.locator("#view").inner_text()
            for text in texts:
                assert text in shown, (hash_, text)
            # The seeds lack speakers, outcomes and reviews: a missing field is a dash.
            assert not re.search(r"\b(null|undefined|NaN)\b", shown), (hash_, shown)
            # Nothing was parsed as markup: no element the payloads name, no script ran.
            assert page.evaluate(PLANTED) == [], hash_
            assert page.evaluate("window.__xss === undefined"), hash_
            assert unnamed_controls(page) == [], hash_
    assert problems.all() == [], "\n".join(problems.all())
