"""``python -m ww.api.server``: run the API with uvicorn on WW_API_HOST:WW_API_PORT."""

from __future__ import annotations

import logging
import sys

import uvicorn

from ww.config import ConfigError, load_settings

__all__ = ["main"]


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    try:
        settings = load_settings()
    except ConfigError as exc:
        print(f"world-weaver: {exc}", file=sys.stderr)
        return 2
    from ww.api.app import create_app

    try:
        app = create_app(settings)
    except ConfigError as exc:
        print(f"world-weaver: {exc}", file=sys.stderr)
        return 2
    config = uvicorn.Config(
        app, host=settings.api_host, port=settings.api_port, log_level="info", lifespan="on"
    )
    server = uvicorn.Server(config)
    server.run()
    # uvicorn reports a failed start-up (e.g. a store that will not open) by not starting.
    return 0 if server.started else 3


if __name__ == "__main__":
    sys.exit(main())
