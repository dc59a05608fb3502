"""``/ui``: the web explorer, a static page served from the package.

The page is a shell of HTML, JavaScript modules and CSS with no secret in it; every datum it
shows comes from the ordinary API, called from the browser with the key the person types
(kept in the tab's session storage). So the shell is exempt from auth (``ww.api.auth``) and
the data stays behind it. ``static/explorer/vendor/README.md`` names the vendored libraries.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

__all__ = ["EXPLORER_DIR", "UI_URL", "install_explorer", "router"]

UI_URL = "/ui"
EXPLORER_DIR = Path(__file__).resolve().parent.parent / "static" / "explorer"

router = APIRouter(include_in_schema=False)


@router.get(UI_URL)
async def explorer_index() -> FileResponse:
    # Served at the bare path too; the page names its assets by absolute URL.
    return FileResponse(EXPLORER_DIR / "index.html", media_type="text/html")


def install_explorer(app: FastAPI) -> None:
    """``/ui`` and ``/ui/`` answer the page, ``/ui/<file>`` the files beside it."""
    app.include_router(router)
    app.mount(UI_URL, StaticFiles(directory=EXPLORER_DIR, html=True), name="explorer")
