"""Who is calling and what they may do: API tokens with roles, or a user named by a trusted proxy.

Roles are ordered: viewer reads; responder also sends alerts, adds notes and proposes actions;
commander also approves and rejects risky actions; admin also manages tokens and sees the config.
A token arrives as `Authorization: Bearer …` (API clients, Alertmanager) or in the room's cookie.
"""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import IntEnum

from fastapi import HTTPException, Request

from warroom.serve.config import AuthConfig
from warroom.store.repository import Store
from warroom.store.tokens import TokenInfo, digest, find_token

COOKIE = "warroom_token"
# How long a token found valid is believed without asking the store again. A revocation through
# this server's API clears the cache (it counts at the next request); one made elsewhere (`warroom
# token revoke`, another process) counts within this many seconds.
TOKEN_TTL_S = 5.0
TOKEN_CACHE_SIZE = 1024


class TokenCache:
    """Valid tokens by digest, each believed for `ttl_s`: the store's lookup was about half of an
    intake request's cost. Unknown and revoked tokens are not cached (so a flood of bad tokens
    cannot push out good ones, and is answered from the store each time)."""

    def __init__(self, store: Store, ttl_s: float = TOKEN_TTL_S, size: int = TOKEN_CACHE_SIZE) -> None:
        self.store = store
        self.ttl_s = ttl_s
        self.size = size
        self._valid: dict[str, tuple[TokenInfo, float]] = {}

    def find(self, token: str) -> TokenInfo | None:
        key, now = digest(token), time.monotonic()
        hit = self._valid.get(key)
        if hit is not None and hit[1] > now:
            return hit[0]
        info = find_token(self.store, token)
        if info is None:
            self._valid.pop(key, None)
            return None
        if len(self._valid) >= self.size:
            self._valid.clear()  # bounded; the next requests refill it from the store
        self._valid[key] = (info, now + self.ttl_s)
        return info

    def clear(self) -> None:
        """Forget every token (a token was revoked): the next request of each asks the store."""
        self._valid.clear()


class Role(IntEnum):
    VIEWER = 1
    RESPONDER = 2
    COMMANDER = 3
    ADMIN = 4

    @classmethod
    def parse(cls, name: str) -> Role:
        try:
            return cls[name.strip().upper()]
        except KeyError:
            raise ValueError(f"'{name}' is not a role (expected viewer, responder, commander or admin)") from None

    @property
    def label(self) -> str:
        return self.name.lower()


ROLE_NAMES = tuple(r.label for r in Role)


@dataclass(frozen=True)
class Principal:
    name: str
    role: Role
    via: str  # token | proxy


class Unauthenticated(HTTPException):
    def __init__(self, detail: str) -> None:
        super().__init__(401, detail, headers={"WWW-Authenticate": 'Bearer realm="warroom"'})


def _bearer(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return request.cookies.get(COOKIE) or None


def _from_trusted_proxy(request: Request, auth: AuthConfig) -> bool:
    if not auth.trusted_header or request.client is None:
        return False
    try:
        client = ipaddress.ip_address(request.client.host)
    except ValueError:
        return False
    return any(client in ipaddress.ip_network(net, strict=False) for net in auth.trusted_proxies)


def authenticate(request: Request, tokens: TokenCache, auth: AuthConfig) -> Principal:
    """The caller, or 401. A trusted proxy's user header wins over a token it forwards."""
    if _from_trusted_proxy(request, auth):
        assert auth.trusted_header is not None
        user = request.headers.get(auth.trusted_header, "").strip()
        if user:
            role_name = request.headers.get(auth.role_header or "", "").strip() or auth.default_role
            try:
                role = Role.parse(role_name)
            except ValueError as exc:
                raise HTTPException(403, str(exc)) from None
            return Principal(user, role, "proxy")
    token = _bearer(request)
    if token is None:
        raise Unauthenticated("authentication required: send an API token as 'Authorization: Bearer <token>'")
    info = tokens.find(token)
    if info is None:
        raise Unauthenticated("the token is not valid (unknown or revoked)")
    return Principal(info.name, Role.parse(info.role), "token")


def requires(role: Role) -> Callable[[Request], Awaitable[Principal]]:
    """A FastAPI dependency: the authenticated caller, who must hold at least `role` (else 403)."""

    # async: a token lookup is a cache hit or one indexed read, cheaper than a hop to the thread pool
    async def dependency(request: Request) -> Principal:
        svc = request.app.state.service
        principal = authenticate(request, svc.tokens, svc.config.auth)
        request.state.principal = principal  # the audit log names who made each write
        if principal.role < role:
            raise HTTPException(403, f"this needs the {role.label} role; {principal.name} is {principal.role.label}")
        return principal

    dependency.__name__ = f"requires_{role.label}"
    return dependency
