"""The FastAPI application: API routers, the web room, problem details, the audit of writes."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse
from fastapi.staticfiles import StaticFiles

from warroom.serve import metrics, problems, web
from warroom.serve.api import actions, admin, alerts, incidents, replay, stream
from warroom.serve.api.deps import Service
from warroom.serve.audit import AuditMiddleware

API_VERSION = "1"


def create_app(svc: Service) -> FastAPI:
    app = FastAPI(
        title="warroom",
        version=API_VERSION,
        description="Incident response service: alert intake, incidents, diagnosis with evidence, approvals.",
        openapi_url="/api/v1/openapi.json",
        docs_url=None,  # Swagger UI loads its assets from a CDN; the room fetches nothing from outside
        redoc_url=None,
    )
    app.state.service = svc
    problems.install(app)

    @app.exception_handler(web.LoginRequired)
    async def to_login(request: Request, _: web.LoginRequired) -> RedirectResponse:
        return web.login_redirect(request)

    # inside the audit (added later is outer): a request the fast path takes is audited by `take`
    app.add_middleware(alerts.AlertmanagerFastPath, svc=svc)
    app.add_middleware(AuditMiddleware, committer=svc.committer)
    for module in (alerts, incidents, stream, actions, admin, replay):
        app.include_router(module.router)
    app.include_router(metrics.router)
    app.include_router(web.router)
    app.mount("/static", StaticFiles(directory=str(Path(__file__).parent / "static")), name="static")
    return app
