"""auth: checks e-mail and password and issues a session token."""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets

from fastapi import HTTPException, Request
from pydantic import BaseModel

from shop.common import service, settings
from shop.common.db import Database
from shop.common.telemetry import client_address

SETTINGS = settings.load("auth")
log = logging.getLogger("shop.auth")
db = Database(SETTINGS.database_url or "", "auth", SETTINGS.section("pool"))


class Login(BaseModel):
    email: str
    password: str


async def _shutdown() -> None:
    await db.close()


app = service.create(SETTINGS, db.open, _shutdown)


@app.post("/login")
async def login(credentials: Login, request: Request) -> dict:
    async with db.connection() as conn:
        rows = await db.query(
            conn,
            "SELECT id, password_salt, password_hash FROM users WHERE email = %s",
            (credentials.email,),
            table="users",
        )
    address = client_address(dict(request.headers), request.scope)
    if rows:
        user_id, salt, expected = rows[0]
        given = hashlib.sha256(f"{salt}{credentials.password}".encode()).hexdigest()
        if hmac.compare_digest(given, expected):
            return {"user_id": user_id, "token": secrets.token_urlsafe(24)}
    log.warning(
        "login failed",
        extra={"fields": {"event": "login.failed", "user.email": credentials.email, "client.address": address}},
    )
    raise HTTPException(status_code=401, detail="invalid credentials")
