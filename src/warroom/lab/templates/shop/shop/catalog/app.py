"""catalog: products, categories and stock levels, read from PostgreSQL."""

from __future__ import annotations

import logging

from fastapi import HTTPException

from shop.common import service, settings
from shop.common.db import Database

SETTINGS = settings.load("catalog")
LISTING = SETTINGS.section("listing")
log = logging.getLogger("shop.catalog")
db = Database(SETTINGS.database_url or "", "catalog", SETTINGS.section("pool"))
PAGE_SIZE = int(LISTING.get("page_size", 24))


async def _shutdown() -> None:
    await db.close()


app = service.create(SETTINGS, db.open, _shutdown)


def _product(row: tuple) -> dict:
    product_id, sku, name, brand, price_cents, description = row[:6]
    return {
        "id": product_id,
        "sku": sku,
        "name": name,
        "brand": brand,
        "price_cents": price_cents,
        "description": description,
    }


@app.get("/products")
async def browse(category: int = 1, page: int = 0) -> dict:
    async with db.connection() as conn:
        rows = await db.query(
            conn,
            "SELECT id, sku, name, brand, price_cents, description FROM products "
            "WHERE category_id = %s ORDER BY popularity DESC LIMIT %s OFFSET %s",
            (category, PAGE_SIZE, max(page, 0) * PAGE_SIZE),
            table="products",
        )
    return {"category": category, "page": page, "products": [_product(row) for row in rows]}


@app.get("/products/{product_id}")
async def product(product_id: int) -> dict:
    async with db.connection() as conn:
        rows = await db.query(
            conn,
            "SELECT p.id, p.sku, p.name, p.brand, p.price_cents, p.description, i.stock "
            "FROM products p JOIN inventory i ON i.product_id = p.id WHERE p.id = %s",
            (product_id,),
            table="products",
        )
    if not rows:
        raise HTTPException(status_code=404, detail="no such product")
    item = _product(rows[0])
    item["in_stock"] = rows[0][6] > 0
    return item
