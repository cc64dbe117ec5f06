"""Calls to another shop service over HTTP: a CLIENT span, trace propagation, latency metrics."""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import urlparse

import httpx
from opentelemetry import propagate, trace
from opentelemetry.trace import SpanKind, Status, StatusCode
from prometheus_client import Histogram

CLIENT_LATENCY = Histogram(
    "http_client_request_duration_seconds",
    "Duration of HTTP calls to other services.",
    ["peer_service", "http_request_method", "http_response_status_code"],
)
tracer = trace.get_tracer("shop.downstream")


class Downstream:
    def __init__(self, name: str, base_url: str, timeout_seconds: float, max_connections: int = 50) -> None:
        self.name = name
        parsed = urlparse(base_url)
        self.address = (parsed.hostname or "", parsed.port or 80)
        self.client = httpx.AsyncClient(
            base_url=base_url,
            timeout=timeout_seconds,
            limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections),
        )

    async def close(self) -> None:
        await self.client.aclose()

    async def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        with tracer.start_as_current_span(method, kind=SpanKind.CLIENT) as span:
            span.set_attributes(
                {
                    "http.request.method": method,
                    "server.address": self.address[0],
                    "server.port": self.address[1],
                    "peer.service": self.name,
                    "url.full": f"{self.client.base_url}{path.lstrip('/')}",
                }
            )
            headers: dict[str, str] = dict(kwargs.pop("headers", {}) or {})
            propagate.inject(headers)
            started = time.perf_counter()
            status = "error"
            try:
                response = await self.client.request(method, path, headers=headers, **kwargs)
            except httpx.HTTPError as exc:
                span.set_status(Status(StatusCode.ERROR, type(exc).__name__))
                span.set_attribute("error.type", type(exc).__name__)
                raise
            else:
                status = str(response.status_code)
                span.set_attribute("http.response.status_code", response.status_code)
                if response.status_code >= 500:
                    span.set_status(Status(StatusCode.ERROR))
                    span.set_attribute("error.type", status)
                return response
            finally:
                CLIENT_LATENCY.labels(self.name, method, status).observe(time.perf_counter() - started)
