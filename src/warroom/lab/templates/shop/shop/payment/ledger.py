"""The payment ledger: payments are written in small batches (group commit) to cut commit load.

A request waits for the batch holding its payment to commit, so `flush_interval_ms` bounds the
extra latency a payment pays for batching.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from shop.common.db import Database

log = logging.getLogger("shop.payment.ledger")


class Ledger:
    def __init__(self, db: Database, config: dict[str, Any]) -> None:
        self.db = db
        self.flush_interval = float(config.get("flush_interval_ms", 20)) / 1000
        self.max_batch = int(config.get("max_batch", 100))
        self.queue: asyncio.Queue[tuple[tuple[int, int, str, str], asyncio.Future[int]]] = asyncio.Queue()
        self.task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self.task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self.task:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task

    async def record(self, order_id: int, amount_cents: int, token: str, status: str) -> int:
        done: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        await self.queue.put(((order_id, amount_cents, token, status), done))
        return await done

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.flush_interval)
            batch = []
            while not self.queue.empty() and len(batch) < self.max_batch:
                batch.append(self.queue.get_nowait())
            if batch:
                await self._flush(batch)

    async def _flush(self, batch: list[tuple[tuple[int, int, str, str], asyncio.Future[int]]]) -> None:
        try:
            async with self.db.connection() as conn, conn.transaction():
                ids = []
                for row, _ in batch:
                    inserted = await self.db.query(
                        conn,
                        "INSERT INTO payments (order_id, amount_cents, card_token, status) "
                        "VALUES (%s, %s, %s, %s) RETURNING id",
                        row,
                        table="payments",
                    )
                    ids.append(inserted[0][0])
        except Exception as exc:
            log.exception("ledger flush failed", extra={"fields": {"batch.size": len(batch)}})
            for _, done in batch:
                if not done.done():
                    done.set_exception(exc)
            return
        for (_, done), payment_id in zip(batch, ids, strict=True):
            if not done.done():
                done.set_result(payment_id)
