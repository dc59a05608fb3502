"""A real World Weaver server on a loopback port, in this process: uvicorn in a thread."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn
from fastapi import FastAPI

from ww.api import create_app
from ww.config import Settings
from ww.embedding import EmbeddingService
from ww.engine import build_engine

__all__ = ["HOST", "make_app", "serve"]

HOST = "127.0.0.1"


@contextmanager
def serve(app: FastAPI) -> Iterator[str]:
    """``app`` served by uvicorn on a free loopback port (the kernel picks it), in a thread;
    yields its URL and stops it (lifespan and all) on exit."""
    server = uvicorn.Server(uvicorn.Config(app, host=HOST, port=0, log_level="warning"))
    thread = threading.Thread(target=server.run, name="ww-sdk-test-server", daemon=True)
    thread.start()
    while not server.started:
        if not thread.is_alive():
            raise RuntimeError("the test server did not start")
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://{HOST}:{port}"
    finally:
        server.should_exit = True
        thread.join()


def make_app(settings: Settings, embedding_service: EmbeddingService, **changes: Any) -> FastAPI:
    cfg = settings.model_copy(update=changes) if changes else settings
    return create_app(cfg, build_engine(cfg, embedder=embedding_service))
