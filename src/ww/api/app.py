"""The FastAPI application factory."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

from fastapi import FastAPI

from ww import __version__, tracing
from ww.api.auth import Authenticator, AuthMiddleware, document_security
from ww.api.control_gate import ControlGate, blocked
from ww.api.disk import FreeingDeletesMiddleware
from ww.api.docs_ui import install_docs
from ww.api.errors import install_error_handlers
from ww.api.idempotency import Idempotency
from ww.api.limits import BodyGuardMiddleware
from ww.api.metrics import METRICS_PATH, StoreGauges, gauge_refresher, metrics_endpoint
from ww.api.middleware import RequestIdMiddleware
from ww.api.observe import RequestObserver, RouteTemplates, log_access
from ww.api.ratelimit import (
    RateLimitMiddleware,
    build_rate_limiter,
    document_rate_limits,
    route_groups,
)
from ww.api.routers import (
    admin,
    circuits,
    consolidate,
    control,
    entities,
    episodes,
    explore,
    feedback,
    recall,
    sessions,
    skills,
    system,
)
from ww.api.routers.ui import install_explorer
from ww.api.security import SecurityHeadersMiddleware, install_cors
from ww.config import Settings, VectorBackend, load_settings
from ww.control.flags import Flags
from ww.control.runtime import ControlPlane
from ww.engine import (
    MemoryEngine,
    build_consolidator,
    build_engine,
    build_procedural,
    build_semantic,
)
from ww.engine.consolidation import ConsolidationScheduler
from ww.engine.maintenance import HostLeader, Maintenance, warm
from ww.logs import configure_logging
from ww.secrets import url_address
from ww.storage.factory import control_store, disk_guard, idempotency_store

__all__ = ["create_app", "create_app_from_env", "startup_line"]

logger = logging.getLogger(__name__)


def startup_line(settings: Settings, flags: Flags, model_id: str, dimension: int) -> str:
    """One line saying where the data lives, which backends and model serve it, and which
    flags differ from their defaults (never a password or key)."""
    if settings.neo4j_uri is not None:
        records = f"records neo4j {url_address(settings.neo4j_uri)}"
    else:
        records = f"records sqlite {settings.data_dir / 'ww.sqlite3'}"
    backend = settings.vector_store
    if backend is VectorBackend.QDRANT and settings.qdrant_url is not None:
        vectors = f"vectors qdrant {url_address(settings.qdrant_url)}"
    elif backend is VectorBackend.NEO4J:
        vectors = "vectors neo4j (the records' database)"
    else:
        vectors = f"vectors qdrant-edge {settings.data_dir}"
    changed = [
        f"{name}={'on' if value else 'off'}"
        for name, value in flags.model_dump().items()
        if value != type(flags).model_fields[name].default
    ]
    return (
        f"world-weaver {__version__} starting ({settings.environment.value}): {records}; "
        f"{vectors}; model {model_id} ({dimension} dimensions); flags changed from defaults: "
        + (", ".join(changed) if changed else "none")
    )


def _document_security(app: FastAPI) -> None:
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = build()
            document_security(schema)
            document_rate_limits(schema)
        return app.openapi_schema or {}

    app.openapi = openapi  # type: ignore[method-assign]


def create_app_from_env() -> FastAPI:
    """The app of one worker when ``WW_API_WORKERS`` > 1: uvicorn imports this factory in
    each worker process, which builds its own engine from the environment (and sets up its
    logging: a spawned worker starts with none)."""
    settings = load_settings()
    configure_logging(settings)
    return create_app(settings)


def create_app(settings: Settings | None = None, engine: MemoryEngine | None = None) -> FastAPI:
    """Build the app; the engine is opened at start-up and closed at shutdown.

    Pass ``engine`` to serve one built elsewhere (tests inject a clock this way).
    """
    settings = settings or load_settings()
    # Built here, not in the lifespan, so a model that will not load fails before serving.
    eng = engine or build_engine(settings)
    semantic = build_semantic(settings, eng)
    procedural = build_procedural(settings, eng)
    consolidator = build_consolidator(eng, semantic)
    idempotency = Idempotency(
        idempotency_store(eng.records), timedelta(hours=settings.idempotency_ttl_hours), eng.clock
    )
    eng.session_deleters.append(idempotency.delete_session)
    # Every flag reader reads ``eng.flags`` at each use; the control plane replaces it.
    plane = ControlPlane(
        control_store(eng.records), eng.flags, lambda flags: setattr(eng, "flags", flags)
    )
    authenticator = Authenticator(settings)
    # Spans while WW_OTEL_ENABLED and the flag, read at each span, are both on.
    tracing.install(settings, lambda: eng.flags.telemetry)
    rate_limiter = build_rate_limiter(settings, circuit=eng.circuits.get("redis"))
    if not authenticator.enabled:
        logger.warning(
            "no API key or JWT secret is set: every route is open to anyone who can reach "
            "%s:%d (set WW_API_KEY; see docs/security.md)",
            settings.api_host,
            settings.api_port,
        )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Before opening anything, so a store that will not open is seen with its address.
        logger.info(
            "%s",
            startup_line(settings, eng.flags, eng.embedder.model_id, eng.embedder.dimension),
        )
        await eng.open()
        await plane.load()
        rate_limiter.open()
        await semantic.open()
        await procedural.open()
        maintenance = Maintenance(eng, disk=disk_guard(settings), chores=[idempotency.purge])
        maintenance.start()
        warming = asyncio.create_task(warm(eng))
        app.state.engine = eng
        app.state.semantic = semantic
        app.state.procedural = procedural
        app.state.consolidator = consolidator
        app.state.idempotency = idempotency
        leader = HostLeader(settings.data_dir / "scheduler.lock")
        scheduler = ConsolidationScheduler(
            consolidator,
            settings.consolidation_interval,
            leader=leader if settings.api_workers > 1 else None,
            # Paused while the control plane would refuse a consolidation request.
            paused=lambda: blocked(plane, "POST", "/api/v1/consolidate") is not None,
        )
        app.state.scheduler = scheduler
        if settings.consolidation_interval > 0:
            scheduler.start()
        plane.start()
        try:
            yield
        finally:
            warming.cancel()
            await asyncio.gather(warming, return_exceptions=True)
            await scheduler.stop()
            leader.release()
            await maintenance.stop()
            await procedural.close()
            await semantic.close()
            await plane.stop()
            await eng.close()
            await rate_limiter.close()
            tracing.uninstall()

    app = FastAPI(
        title="World Weaver",
        version=__version__,
        description="Long-term memory for AI agents: store episodes, recall them by meaning, "
        "keywords and time. Every request acts in the session named by `X-Session-ID`.",
        lifespan=lifespan,
        # Served by install_docs from the package, not from a CDN.
        docs_url=None,
        redoc_url=None,
    )
    app.state.settings = settings
    # The flags in force now: ``app.state.control.flags()`` (the same as ``eng.flags``).
    app.state.control = plane
    app.state.rate_limiter = rate_limiter
    install_error_handlers(app)
    install_docs(app)
    install_explorer(app)
    routers = (
        system.router,
        episodes.router,
        sessions.router,
        entities.router,
        skills.router,
        feedback.router,
        recall.router,
        consolidate.router,
        explore.router,
        admin.router,
        control.router,
        circuits.router,
    )
    for router in routers:
        app.include_router(router)
    gauges = gauge_refresher(eng.circuits, eng.embedder)
    counted = StoreGauges(eng.records, eng.clock)
    app.add_route(METRICS_PATH, metrics_endpoint(gauges, counted), ["GET"], include_in_schema=False)
    _document_security(app)
    # Outermost last: the request id must exist before the body's bounds can answer.
    app.add_middleware(
        BodyGuardMiddleware,
        max_bytes=settings.api_max_body_bytes,
        timeout=settings.api_request_timeout,
    )
    app.add_middleware(FreeingDeletesMiddleware)
    # Inside auth, which names the caller whose budget a request spends; outside the body's
    # bounds, so a caller past its limit is answered before its body is read. The flag is
    # read on every request.
    app.add_middleware(
        RateLimitMiddleware,
        limiter=rate_limiter,
        enabled=lambda: eng.flags.api_rate_limiting,
        # A route's path already holds its router's prefix.
        groups=route_groups(getattr(route, "path", "") for r in routers for route in r.routes),
        redis_down=settings.rate_limit_redis_down,
        down_retry_s=settings.redis_retry_s,
    )
    # Inside auth (an anonymous caller hears 401, not the control state) and outside the rate
    # limit (a refused request spends no budget); a refused write is answered before its
    # body is read.
    app.add_middleware(ControlGate)
    # Inside the request id (its 401s carry one), outside the body's bounds: an anonymous
    # caller is refused before any byte of its body is read.
    app.add_middleware(AuthMiddleware, authenticator=authenticator)
    # Outside auth, so a browser's preflight (which carries no credentials) is answered, and
    # every answer, a 401 or a 413 included, carries the CORS headers.
    install_cors(app, settings.api_cors_origins)
    # Outside auth and the limits, so their refusals are counted and logged too; inside the
    # request id, which the access line names.
    app.add_middleware(
        RequestObserver,
        routes=RouteTemplates(
            (getattr(route, "path", ""), getattr(route, "methods", None) or ())
            for r in routers
            for route in r.routes
        ),
        gauges=gauges,
        listeners=[log_access],
    )
    app.add_middleware(RequestIdMiddleware)
    # Outermost: every answer, a preflight or an error from any middleware, gets the headers.
    app.add_middleware(SecurityHeadersMiddleware)
    return app
