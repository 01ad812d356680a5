"""The application factory and its lifespan: servers, engine, Redis, keys, scheduler."""

import asyncio
import contextlib
import logging
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.telemetry import TelemetryConfig

from app.auth import keys
from app.core import callers, clock, db, embedded, errors, heap, openapi, redis, route_index
from app.core.config import Settings, get_settings
from app.core.observability import RequestMiddleware, configure_logging
from app.core.scheduler import Leader
from app.web import install as install_web

log = logging.getLogger(__name__)
BOOTSTRAP_LOCK = 0x0A0D17_3000

DESCRIPTION = """
The unified carbon-inclusion platform (碳普惠统一管理平台) of a city.

* Operators enrol people who entrusted them and submit their low-carbon behaviours in signed batches.
* Published methodologies turn behaviours into grams CO2e; the exchange rule turns grams into carbon points,
  kept in lots that expire after at most 10 years.
* People spend points in the rewards mall; merchants redeem vouchers at the counter.

Errors are RFC 9457 `application/problem+json` with a stable `code`. Every POST honours `Idempotency-Key`
(required on behaviour batches and orders). Lists page by cursor (`?limit=&cursor=`).

Public reads, called without a token, may be cached: `Cache-Control: public, max-age=…` (60 s for lists,
records and totals; 300 s for the expert pool and the JWKS; an hour for certificates; a day, immutable, for
a review's draw), a strong `ETag` over the body, and `304 Not Modified` for a matching `If-None-Match`.
Everything else is `no-store`.
"""


async def bootstrap_admin(settings: Settings) -> None:
    if not settings.bootstrap_admin:
        return
    from app.organizations import service as org_service

    username, _, password = settings.bootstrap_admin.partition(":")
    async with db.session_scope() as session:
        await db.advisory_xact_lock(session, BOOTSTRAP_LOCK)
        if await org_service.authority_exists(session):
            return
        await org_service.create_staff_user(session, username, password, "authority")
        log.info("bootstrap authority account created", extra={"username": username})


NO_TELEMETRY: TelemetryConfig = {"tracing": False, "metrics": False, "logs": False}
"""FastAPI's native OpenTelemetry, off (``CARBON_OPENTELEMETRY`` turns it on)."""


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        urls = embedded.ensure_servers(settings.database_url, settings.redis_url, settings.data_dir)
        app.state.urls = urls
        db.init(urls.database_url, settings.db_pool_size, settings.db_direct_pool_size)
        redis.init(urls.redis_url)
        async with db.session_scope() as session:
            await keys.ensure(session)
        await bootstrap_admin(settings)
        # the sandbox clock (local and test only): loaded now, re-read once a second off the request path
        sandbox = None
        if clock.sandbox_allowed():
            await clock.refresh()
            sandbox = asyncio.create_task(clock.keep_fresh(urls.database_url))
        # callers' standing kept per process until a committed change is heard of (app.core.callers)
        listener = asyncio.create_task(callers.listen(db.plain_url(urls.database_url)))
        from app import tasks  # every domain's jobs, imported here as the routers are in create_app

        leader = Leader(urls.database_url, tasks.jobs())
        if settings.scheduler_enabled:
            leader.start()
        app.state.leader = leader
        heap.settle()  # everything started stays out of the cyclic collector's walks (app.core.heap)
        try:
            yield
        finally:
            listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await listener
            if sandbox is not None:
                sandbox.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await sandbox
            await leader.stop()
            await redis.close()
            await db.dispose()

    app = FastAPI(
        title="Carbon points platform",
        version="1.0",
        description=DESCRIPTION,
        lifespan=lifespan,
        openapi_url="/openapi.json",
        docs_url=None,  # /docs and /redoc come from app.web, on vendored files (no CDN)
        redoc_url=None,
        telemetry=None if settings.opentelemetry else NO_TELEMETRY,
    )
    openapi.install(app)  # first: errors.install wraps it to document every error as problem+json
    errors.install(app)
    from app.routers import ROUTERS

    for router in ROUTERS:
        app.include_router(router)
    install_web(app)  # pages, /static, /docs and /redoc, HTML error pages for browsers
    route_index.install(app)  # last: each router asked only about paths it could have
    if settings.cors_origin_list:  # server-to-server and native apps need none: off unless configured
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origin_list,
            allow_methods=["GET", "POST", "PATCH", "DELETE"],
            allow_headers=[
                "Authorization",
                "Content-Type",
                "Idempotency-Key",
                "X-Content-Signature",
                "X-Request-ID",
            ],
            expose_headers=["X-Request-ID", "Retry-After", "Idempotent-Replayed"],
            max_age=600,
        )
    app.add_middleware(RequestMiddleware, settings=settings)
    return app


def app() -> FastAPI:
    """Factory for ``uvicorn --factory app.main:app``."""
    configure_logging(get_settings().log_level)
    return create_app()
