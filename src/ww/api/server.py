"""``python -m ww.api.server`` (or ``ww-server``): run the API with uvicorn on
WW_API_HOST:WW_API_PORT. ``--help`` lists the options; ``--host``, ``--port``, ``--data-dir``
and ``--workers`` override their ``WW_*`` settings.

One worker serves an app built here. ``WW_API_WORKERS`` > 1 (server tier only, see
``Settings.uses_server_backends``) starts that many worker processes on one socket, each
building its own engine from the environment (``worker_app``); this process checks the
stores and creates their schema once before any worker starts, and each worker dies with it
(``ww.api.lifeline``). SIGHUP to this process replaces the workers one at a time, each
old one stopping gracefully once its replacement is ready (a rolling restart, see
``docs/operations.md``). Both ways, connections go through ``ww.api.protocol`` (header
deadline, connection cap).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import faulthandler
import logging
import os
import shutil
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import uvicorn
from fastapi import FastAPI
from uvicorn.config import STARTUP_FAILURE
from uvicorn.supervisors import Multiprocess

from ww.api.auth import Authenticator
from ww.api.lifeline import die_with_parent
from ww.api.metrics import MULTIPROC_ENV
from ww.api.protocol import protocol_factory
from ww.api.ratelimit import per_worker_warning
from ww.config import ConfigError, Settings, load_settings
from ww.embedding import EmbeddingError
from ww.engine import MemoryEngine
from ww.engine.embedding_lock import check_embedding_lock
from ww.logs import configure_early_logging, configure_logging
from ww.storage import build_stores
from ww.storage.factory import build_vector_index, check_extras, disk_startup_problem

__all__ = ["main", "parse_args", "settings_from_args", "worker_app"]

# Command-line option -> the setting it overrides.
_OPTIONS = {
    "host": "api_host",
    "port": "api_port",
    "data_dir": "data_dir",
    "workers": "api_workers",
}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ww-server",
        description="Run the World Weaver memory API. Settings come from WW_* environment "
        "variables and ./.env (see the README's Configuration section); each option below "
        "overrides its variable.",
    )
    parser.add_argument("--host", help="address to listen on (WW_API_HOST, default 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port to listen on (WW_API_PORT, default 8765)")
    parser.add_argument(
        "--data-dir",
        type=Path,
        help="embedded tier's data directory (WW_DATA_DIR, default ~/.local/share/world-weaver)",
    )
    parser.add_argument(
        "--workers",
        type=int,
        help="worker processes; more than 1 needs the server tier (WW_API_WORKERS, default 1)",
    )
    return parser


def parse_args(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """The settings the command line overrides (``--help`` prints help and exits 0)."""
    args = vars(_parser().parse_args(argv))
    return {_OPTIONS[k]: v for k, v in args.items() if v is not None}


def settings_from_args(argv: Sequence[str] | None = None) -> Settings:
    """Settings from the environment and ``.env``, with the command line's options on top."""
    return load_settings(**parse_args(argv))


def main(argv: Sequence[str] | None = None) -> int:
    overrides = parse_args(argv)  # before anything starts: --help and bad options exit here
    configure_early_logging(os.environ)
    # A fatal signal (a SIGBUS in a memory-mapped store) leaves a traceback on stderr
    # instead of a silent exit.
    with contextlib.suppress(AttributeError, ValueError, OSError):  # stderr without a file
        faulthandler.enable()
    try:
        settings = load_settings(**overrides)
        configure_logging(settings)
        check_extras(settings)
        Authenticator(settings)  # a bad key list stops start-up here, before the model loads
    except ConfigError as exc:
        print(f"world-weaver: {exc}", file=sys.stderr)
        return 2
    problem = disk_startup_problem(settings)
    if problem is not None:
        print(f"world-weaver: {problem}", file=sys.stderr)
        return 2
    from ww.api.app import create_app
    from ww.engine import build_engine

    try:
        engine = build_engine(settings)
        asyncio.run(_check_data_dir(settings, engine))
        if settings.api_workers > 1:
            warning = per_worker_warning(settings, engine.flags.api_rate_limiting)
            if warning is not None:
                logging.getLogger(__name__).warning("%s", warning)
            del engine  # each worker loads its own model
            asyncio.run(_create_vector_schema(settings))
            # Workers build their settings from the environment: the options go there too.
            os.environ.update({f"WW_{k.upper()}": str(v) for k, v in overrides.items()})
            return _run_workers(settings)
        app = create_app(settings, engine)
    except (ConfigError, EmbeddingError) as exc:
        print(f"world-weaver: {exc}", file=sys.stderr)
        return 2
    config = uvicorn.Config(app, **_uvicorn_options(settings))
    server = uvicorn.Server(config)
    server.run()
    # uvicorn reports a failed start-up (e.g. a store that will not open) by not starting.
    return 0 if server.started else 3


# The root logger of ``ww.logs`` writes uvicorn's records too; ``ww.access`` writes one line
# per request (route template, status, latency, key id) in place of uvicorn's access log.
_UVICORN_LOGGING: dict[str, Any] = {"log_config": None, "access_log": False}


def _uvicorn_options(settings: Settings) -> dict[str, Any]:
    """What one worker and a pool of them run with alike."""
    return {
        "host": settings.api_host,
        "port": settings.api_port,
        "lifespan": "on",
        "http": protocol_factory(settings.api_request_timeout, settings.api_max_connections),
        **_UVICORN_LOGGING,
    }


def worker_app() -> FastAPI:
    """One worker's app (``WW_API_WORKERS`` > 1): uvicorn calls this in each worker process,
    in its main thread, before it serves."""
    die_with_parent()
    from ww.api.app import create_app_from_env

    return create_app_from_env()


# How long the supervisor waits for a worker it started to finish start-up (the embedding
# model loads in each) or to answer a liveness ping. uvicorn's 5 s would abort a rolling
# restart (SIGHUP) on a busy machine, keeping the old workers.
_WORKER_READY_TIMEOUT_S = 120


def _run_workers(settings: Settings) -> int:
    config = uvicorn.Config(
        "ww.api.server:worker_app",
        factory=True,
        workers=settings.api_workers,
        timeout_worker_healthcheck=_WORKER_READY_TIMEOUT_S,
        **_uvicorn_options(settings),
    )
    # Each worker's metrics go to files here, which /metrics adds up (ww.api.metrics);
    # inherited by the workers, who start after it is set. Made empty for each start, so
    # no count of an earlier run survives.
    metrics_dir = tempfile.mkdtemp(prefix="ww-metrics-")
    os.environ[MULTIPROC_ENV] = metrics_dir
    sock = config.bind_socket()
    supervisor = Multiprocess(config, sockets=[sock])
    try:
        supervisor.run()
    finally:
        sock.close()
        os.environ.pop(MULTIPROC_ENV, None)
        shutil.rmtree(metrics_dir, ignore_errors=True)
    # A worker that cannot start (a store that will not open) stops the whole pool.
    failed = any(p.exitcode == STARTUP_FAILURE for p in supervisor.processes)
    return 3 if failed else 0


async def _create_vector_schema(settings: Settings) -> None:
    """Open each vector index once, so its collection or constraints exist before the
    workers open theirs all at the same moment."""
    for memory_type in ("episodes", "entities", "skills"):
        index = build_vector_index(settings, memory_type)
        await index.open()
        await index.close()


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
