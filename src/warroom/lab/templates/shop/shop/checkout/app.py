"""checkout: carts and orders; reserves stock and takes payment for an order."""

from __future__ import annotations

import logging

from fastapi import HTTPException
from pydantic import BaseModel

from shop.checkout import orders
from shop.common import service, settings
from shop.common.db import Database
from shop.common.downstream import Downstream

SETTINGS = settings.load("checkout")
log = logging.getLogger("shop.checkout")
db = Database(SETTINGS.database_url or "", "checkout", SETTINGS.section("pool"))
payment = Downstream(
    "payment", SETTINGS.upstreams["payment"], float(SETTINGS.section("payment").get("timeout_seconds", 10))
)


class CartItem(BaseModel):
    user_id: int
    product_id: int
    quantity: int = 1


class Checkout(BaseModel):
    user_id: int
    card_number: str
    card_expiry: str


async def _shutdown() -> None:
    await payment.close()
    await db.close()


app = service.create(SETTINGS, db.open, _shutdown)


@app.post("/cart")
async def add_to_cart(item: CartItem) -> dict:
    async with db.connection() as conn:
        await db.query(
            conn,
            "INSERT INTO cart_items (user_id, product_id, quantity) VALUES (%s, %s, %s) "
            "ON CONFLICT (user_id, product_id) DO UPDATE SET quantity = cart_items.quantity + EXCLUDED.quantity",
            (item.user_id, item.product_id, item.quantity),
            table="cart_items",
        )
    return {"user_id": item.user_id, "product_id": item.product_id, "added": item.quantity}


@app.post("/checkout")
async def checkout(order: Checkout) -> dict:
    try:
        return await orders.place(db, payment, order.user_id, order.card_number, order.card_expiry)
    except orders.EmptyCart:
        raise HTTPException(status_code=409, detail="cart is empty") from None
    except orders.OutOfStock as exc:
        log.warning("out of stock", extra={"fields": {"product.id": exc.product_id, "user.id": order.user_id}})
        raise HTTPException(status_code=409, detail=f"product {exc.product_id} is out of stock") from None
    except orders.PaymentDeclined as exc:
        raise HTTPException(status_code=402, detail=str(exc)) from None
