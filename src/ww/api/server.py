"""``python -m ww.api.server``: run the API with uvicorn on WW_API_HOST:WW_API_PORT."""

from __future__ import annotations

import asyncio
import logging
import sys

import uvicorn

from ww.config import ConfigError, Settings, load_settings
from ww.embedding import EmbeddingError
from ww.engine import MemoryEngine
from ww.engine.memory import check_embedding_lock
from ww.storage import build_stores

__all__ = ["main"]


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    try:
        settings = load_settings()
    except ConfigError as exc:
        print(f"world-weaver: {exc}", file=sys.stderr)
        return 2
    from ww.api.app import create_app
    from ww.engine import build_engine

    try:
        engine = build_engine(settings)
        asyncio.run(_check_data_dir(settings, engine))
        app = create_app(settings, engine)
    except (ConfigError, EmbeddingError) as exc:
        print(f"world-weaver: {exc}", file=sys.stderr)
        return 2
    config = uvicorn.Config(
        app, host=settings.api_host, port=settings.api_port, log_level="info", lifespan="on"
    )
    server = uvicorn.Server(config)
    server.run()
    # uvicorn reports a failed start-up (e.g. a store that will not open) by not starting.
    return 0 if server.started else 3


async def _check_data_dir(settings: Settings, engine: MemoryEngine) -> None:
    """Refuse a data directory written with another embedding model, in one clear line."""
    records, _ = build_stores(settings)
    await records.open()
    try:
        await check_embedding_lock(records, engine.embedder.model_id, engine.embedder.dimension)
    finally:
        await records.close()


if __name__ == "__main__":
    sys.exit(main())
