"""The supervisor's HTTP API on loopback: status, the change path (deploy, rollback, revert, restart,
scale), shutdown, container metrics, alert intake, the status-page webhook. Changes and shutdown
need the lab's token (run/state.json)."""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.registry import Collector
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from warroom.lab import alerts
from warroom.lab.topology import LabError, LabPaths

Operation = Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]


def create_app(
    paths: LabPaths,
    token: str,
    status: Callable[[], dict[str, Any]],
    operations: dict[str, Operation],
    stop: Callable[[], None],
    containers: Collector,
) -> Starlette:
    registry = CollectorRegistry()
    registry.register(containers)

    def authorised(request: Request) -> bool:
        given = request.headers.get("authorization", "").removeprefix("Bearer ")
        return hmac.compare_digest(given, token)

    async def get_status(request: Request) -> Response:
        return JSONResponse(status())

    def change(operation: Operation) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            if not authorised(request):
                return JSONResponse({"error": "unauthorised"}, status_code=401)
            try:
                body = await request.json()
            except ValueError:
                return JSONResponse({"error": "the body must be a JSON object"}, status_code=400)
            if not isinstance(body, dict):
                return JSONResponse({"error": "the body must be a JSON object"}, status_code=400)
            try:
                return JSONResponse(await operation(body))
            except LabError as exc:
                return JSONResponse({"error": exc.one_line()}, status_code=409)

        return endpoint

    async def post_stop(request: Request) -> Response:
        if not authorised(request):
            return JSONResponse({"error": "unauthorised"}, status_code=401)
        stop()
        return JSONResponse({"stopping": True})

    async def container_metrics(request: Request) -> Response:
        return Response(generate_latest(registry), media_type="text/plain; version=0.0.4")

    async def post_alerts(request: Request) -> Response:
        alerts.record(paths.alerts_received, await request.body())
        return JSONResponse({"status": "received"})

    async def post_comms(request: Request) -> Response:
        # The shop's status-page webhook: stakeholder updates kept as received.
        alerts.record(paths.comms_received / "webhook", await request.body())
        return JSONResponse({"status": "received"})

    return Starlette(
        routes=[
            Route("/status", get_status),
            *(Route(f"/{name}", change(operation), methods=["POST"]) for name, operation in operations.items()),
            Route("/stop", post_stop, methods=["POST"]),
            Route("/metrics/containers", container_metrics),
            Route("/alerts", post_alerts, methods=["POST"]),
            Route("/comms", post_comms, methods=["POST"]),
        ]
    )
