"""payment: tokenises the card and records the payment in the ledger."""

from __future__ import annotations

import asyncio
import hashlib
import logging

from fastapi import HTTPException
from pydantic import BaseModel

from shop.common import service, settings
from shop.common.db import Database
from shop.payment.ledger import Ledger

SETTINGS = settings.load("payment")
TOKENS = SETTINGS.section("tokenization")
log = logging.getLogger("shop.payment")
db = Database(SETTINGS.database_url or "", "payment", SETTINGS.section("pool"))
ledger = Ledger(db, SETTINGS.section("ledger"))


class PaymentRequest(BaseModel):
    order_id: int
    amount_cents: int
    card_number: str
    card_expiry: str


def tokenize(card_number: str, card_expiry: str) -> str:
    digest = hashlib.pbkdf2_hmac(
        "sha256",
        card_number.encode(),
        f"{TOKENS.get('salt', 'shop')}:{card_expiry}".encode(),
        int(TOKENS.get("iterations", 10_000)),
    )
    return "tok_" + digest.hex()[:32]


async def _startup() -> None:
    await db.open()
    ledger.start()


async def _shutdown() -> None:
    await ledger.stop()
    await db.close()


app = service.create(SETTINGS, _startup, _shutdown)


@app.post("/payments")
async def pay(request: PaymentRequest) -> dict:
    token = await asyncio.to_thread(tokenize, request.card_number, request.card_expiry)
    # Test cards ending in 0002 are declined, as at the real acquirers.
    status = "declined" if request.card_number.endswith("0002") else "captured"
    payment_id = await ledger.record(request.order_id, request.amount_cents, token, status)
    if status == "declined":
        log.info("card declined", extra={"fields": {"order.id": request.order_id, "payment.id": payment_id}})
        raise HTTPException(status_code=402, detail="card declined")
    return {"payment_id": payment_id, "status": status}
