"""Placing an order: reserve stock, record the order, take payment, all in one transaction."""

from __future__ import annotations

import logging

from shop.common.db import Database
from shop.common.downstream import Downstream

log = logging.getLogger("shop.checkout.orders")


class EmptyCart(Exception):
    pass


class OutOfStock(Exception):
    def __init__(self, product_id: int) -> None:
        super().__init__(f"product {product_id} is out of stock")
        self.product_id = product_id


class PaymentDeclined(Exception):
    pass


async def place(db: Database, payment: Downstream, user_id: int, card_number: str, card_expiry: str) -> dict:
    # The payment call happens inside the transaction so a failed payment releases the stock.
    async with db.connection() as conn, conn.transaction():
        items = await db.query(
            conn,
            "SELECT c.product_id, c.quantity, p.price_cents FROM cart_items c "
            "JOIN products p ON p.id = c.product_id WHERE c.user_id = %s",
            (user_id,),
            table="cart_items",
        )
        if not items:
            raise EmptyCart()
        for product_id, quantity, _ in items:
            reserved = await db.query(
                conn,
                "UPDATE inventory SET stock = stock - %s, updated_at = now() "
                "WHERE product_id = %s AND stock >= %s RETURNING stock",
                (quantity, product_id, quantity),
                table="inventory",
            )
            if not reserved:
                raise OutOfStock(product_id)
        total = sum(quantity * price for _, quantity, price in items)
        order_id = (
            await db.query(
                conn,
                "INSERT INTO orders (user_id, total_cents, status) VALUES (%s, %s, 'pending') RETURNING id",
                (user_id, total),
                table="orders",
            )
        )[0][0]
        answer = await payment.request(
            "POST",
            "/payments",
            json={"order_id": order_id, "amount_cents": total, "card_number": card_number, "card_expiry": card_expiry},
        )
        if answer.status_code == 402:
            raise PaymentDeclined(answer.json().get("detail", "declined"))
        answer.raise_for_status()
        payment_id = answer.json()["payment_id"]
        await db.query(
            conn,
            "UPDATE orders SET status = 'paid', payment_id = %s WHERE id = %s",
            (payment_id, order_id),
            table="orders",
        )
        await db.query(conn, "DELETE FROM cart_items WHERE user_id = %s", (user_id,), table="cart_items")
    log.info("order placed", extra={"fields": {"order.id": order_id, "user.id": user_id, "amount_cents": total}})
    return {"order_id": order_id, "payment_id": payment_id, "total_cents": total}
