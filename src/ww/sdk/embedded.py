"""The application an embedded client talks to: the server's own, in this process.

Imported only by ``WorldWeaver.embedded`` and ``AsyncWorldWeaver.embedded``, since it
pulls in the server's dependencies (FastAPI, the engine, ONNX Runtime, the stores).

Both clients reach the app through ``httpx.ASGITransport``, so an embedded call runs the
same routes, validation, auth and error envelope as a remote one. The async client uses
it directly; the blocking one through ``AppTransport``, which hands each request to it on
an event loop in a background thread (anyio's blocking portal).
"""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager, ExitStack
from pathlib import Path
from typing import Any

import httpx
from anyio.from_thread import BlockingPortal, start_blocking_portal
from fastapi import FastAPI

from ww.api import create_app
from ww.config import Settings

__all__ = ["AppTransport", "asgi_transport", "build_app", "lifespan"]


def build_app(data_dir: str | Path | None, settings: Settings | None, app: Any) -> FastAPI:
    """``app`` if given, else the server's app on ``settings`` (``Settings()`` read from the
    environment as the server reads it, with ``data_dir`` over ``WW_DATA_DIR``)."""
    if app is not None:
        if not isinstance(app, FastAPI):
            raise TypeError("an embedded client needs a FastAPI app (ww.api.create_app)")
        return app
    if settings is None:
        settings = Settings() if data_dir is None else Settings(data_dir=Path(data_dir))
    elif data_dir is not None:
        settings = settings.model_copy(update={"data_dir": Path(data_dir)})
    return create_app(settings)


def lifespan(app: FastAPI) -> AbstractAsyncContextManager[Any]:
    """The app's lifespan (engine open, maintenance, scheduler; all closed on exit), which
    ``httpx.ASGITransport`` does not run by itself."""
    started: AbstractAsyncContextManager[Any] = app.router.lifespan_context(app)
    return started


def asgi_transport(app: FastAPI) -> httpx.ASGITransport:
    # An unhandled error is answered 500 in the envelope, as a server answers it, rather
    # than raised into the caller.
    return httpx.ASGITransport(app=app, raise_app_exceptions=False)


class AppTransport(httpx.BaseTransport):
    """A blocking transport to an ASGI app: starts the app's lifespan on a background event
    loop, sends each request there, and stops both on ``close``."""

    def __init__(self, app: FastAPI) -> None:
        self._stack = ExitStack()
        self._portal: BlockingPortal = self._stack.enter_context(start_blocking_portal())
        self._asgi = asgi_transport(app)
        try:
            self._stack.enter_context(self._portal.wrap_async_context_manager(lifespan(app)))
        except BaseException:
            self._stack.close()
            raise

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        request.read()
        return self._portal.call(self._send, request)

    async def _send(self, request: httpx.Request) -> httpx.Response:
        answer = await self._asgi.handle_async_request(request)
        content = await answer.aread()
        return httpx.Response(
            answer.status_code, headers=answer.headers, content=content, request=request
        )

    def close(self) -> None:
        self._stack.close()
