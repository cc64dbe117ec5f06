"""gateway: the shop's public HTTP API; routes each call to the service that owns it."""

from __future__ import annotations

import ipaddress
import logging
import time
from collections import deque

from fastapi import Depends, HTTPException, Request, Response

from shop.common import service, settings
from shop.common.downstream import Downstream
from shop.common.telemetry import client_address

SETTINGS = settings.load("gateway")
UPSTREAM = SETTINGS.section("upstreams")
LIMITS = SETTINGS.section("rate_limits")
log = logging.getLogger("shop.gateway")

catalog = Downstream("catalog", SETTINGS.upstreams["catalog"], float(UPSTREAM.get("timeout_seconds", 5)))
checkout = Downstream("checkout", SETTINGS.upstreams["checkout"], float(UPSTREAM.get("timeout_seconds", 5)))
auth = Downstream("auth", SETTINGS.upstreams["auth"], float(UPSTREAM.get("timeout_seconds", 5)))


class LoginLimiter:
    """Sliding one-minute window of login attempts per client address (0 turns it off)."""

    def __init__(self, per_minute: int, max_clients: int = 100_000) -> None:
        self.per_minute = per_minute
        self.max_clients = max_clients
        self.attempts: dict[str, deque[float]] = {}

    def allow(self, address: str) -> bool:
        if self.per_minute <= 0:
            return True
        now = time.monotonic()
        window = self.attempts.setdefault(address, deque())
        while window and window[0] < now - 60:
            window.popleft()
        if len(self.attempts) > self.max_clients:
            self.attempts = {key: value for key, value in self.attempts.items() if value}
        if len(window) >= self.per_minute:
            return False
        window.append(now)
        return True


limiter = LoginLimiter(int(LIMITS.get("login_per_client_per_minute", 0)))
BLOCKED = [ipaddress.ip_network(net) for rule in SETTINGS.section("edge_blocks").values() for net in rule]


async def refuse_blocked(request: Request) -> None:
    """A client inside a blocked network gets 403 before its call goes anywhere."""
    if not BLOCKED:
        return
    address = client_address(dict(request.headers), request.scope)
    try:
        client = ipaddress.ip_address(address)
    except ValueError:
        return
    if any(client in network for network in BLOCKED):
        log.warning("blocked client", extra={"fields": {"client.address": address, "event": "edge.blocked"}})
        raise HTTPException(status_code=403, detail="blocked")


async def _startup() -> None:
    return None


async def _shutdown() -> None:
    for upstream in (catalog, checkout, auth):
        await upstream.close()


app = service.create(SETTINGS, _startup, _shutdown)
app.router.dependencies.append(Depends(refuse_blocked))  # before the routes below: each gets it


def _forward_headers(request: Request) -> dict[str, str]:
    return {
        "x-forwarded-for": client_address(dict(request.headers), request.scope),
        "content-type": request.headers.get("content-type", "application/json"),
    }


def _relay(upstream: Response) -> Response:
    return Response(upstream.content, status_code=upstream.status_code, media_type="application/json")


@app.get("/api/products")
async def browse(request: Request, category: int = 1, page: int = 0) -> Response:
    answer = await catalog.request(
        "GET", "/products", params={"category": category, "page": page}, headers=_forward_headers(request)
    )
    return _relay(answer)


@app.get("/api/products/{product_id}")
async def product(request: Request, product_id: int) -> Response:
    return _relay(await catalog.request("GET", f"/products/{product_id}", headers=_forward_headers(request)))


@app.post("/api/cart")
async def add_to_cart(request: Request) -> Response:
    body = await request.body()
    return _relay(await checkout.request("POST", "/cart", content=body, headers=_forward_headers(request)))


@app.post("/api/checkout")
async def place_order(request: Request) -> Response:
    body = await request.body()
    return _relay(await checkout.request("POST", "/checkout", content=body, headers=_forward_headers(request)))


@app.post("/api/login")
async def login(request: Request) -> Response:
    address = client_address(dict(request.headers), request.scope)
    if not limiter.allow(address):
        log.warning("login rate limit hit", extra={"fields": {"client.address": address, "event": "ratelimit"}})
        return Response('{"error": "too many login attempts"}', status_code=429, media_type="application/json")
    body = await request.body()
    return _relay(await auth.request("POST", "/login", content=body, headers=_forward_headers(request)))
