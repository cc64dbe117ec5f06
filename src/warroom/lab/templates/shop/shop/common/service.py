"""Builds a shop service's FastAPI app: telemetry, /metrics, /healthz, readiness, error mapping."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from prometheus_client import make_asgi_app
from psycopg_pool import PoolTimeout

from shop.common import lifecycle, telemetry
from shop.common.settings import Settings

log = logging.getLogger("shop")


def create(
    settings: Settings,
    startup: Callable[[], Awaitable[None]],
    shutdown: Callable[[], Awaitable[None]],
) -> FastAPI:
    providers = telemetry.setup(settings.service)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await startup()
        log.info("%s ready", settings.service, extra={"fields": {"event": "service.ready"}})
        lifecycle.notify_ready()
        yield
        log.info("%s stopping", settings.service, extra={"fields": {"event": "service.stopping"}})
        await shutdown()
        telemetry.shutdown(providers)

    # The shop's own middleware makes the server spans, metrics and request logs (FastAPI's native
    # telemetry would make a second server span of every request).
    app = FastAPI(
        title=settings.service,
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.mount("/metrics", make_asgi_app())

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.exception_handler(PoolTimeout)
    async def pool_timeout(request: Request, exc: PoolTimeout) -> JSONResponse:
        log.error("database pool timeout: %s", exc, exc_info=exc, extra={"fields": {"error.type": "PoolTimeout"}})
        return JSONResponse({"error": "database unavailable"}, status_code=503)

    @app.exception_handler(httpx.TimeoutException)
    async def upstream_timeout(request: Request, exc: httpx.TimeoutException) -> JSONResponse:
        log.error("upstream timed out: %r", exc, extra={"fields": {"error.type": type(exc).__name__}})
        return JSONResponse({"error": "upstream timed out"}, status_code=504)

    @app.exception_handler(httpx.TransportError)
    async def upstream_unreachable(request: Request, exc: httpx.TransportError) -> JSONResponse:
        log.error("upstream unreachable: %r", exc, extra={"fields": {"error.type": type(exc).__name__}})
        return JSONResponse({"error": "upstream unavailable"}, status_code=502)

    @app.exception_handler(httpx.HTTPStatusError)
    async def upstream_failed(request: Request, exc: httpx.HTTPStatusError) -> JSONResponse:
        log.error("upstream answered %s", exc.response.status_code, extra={"fields": {"error.type": "HTTPStatusError"}})
        return JSONResponse({"error": "upstream failed"}, status_code=502)

    app.add_middleware(telemetry.ObservabilityMiddleware, service=settings.service, router=app.router)
    return app
