"""PostgreSQL access: one psycopg connection pool per service, traced queries, pool metrics.

Pool metrics use the OpenTelemetry database-client names as a Prometheus exporter writes them
(db.client.connection.count{state=used|idle} -> db_client_connection_count, .max, .pending_requests,
.timeouts, .wait_time).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import urlparse

from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode
from prometheus_client import REGISTRY, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector
from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool

tracer = trace.get_tracer("shop.db")
POOL_LABELS = ["db_client_connection_pool_name"]
WAIT = Histogram("db_client_connection_wait_time_seconds", "Time to obtain a connection from the pool.", POOL_LABELS)
OPERATION = Histogram(
    "db_client_operation_duration_seconds",
    "Duration of database client operations.",
    ["db_system_name", "db_operation_name", "db_collection_name"],
)


class PoolCollector(Collector):
    """Reads psycopg_pool's own statistics at scrape time."""

    def __init__(self, pool: AsyncConnectionPool) -> None:
        self.pool = pool

    def collect(self) -> Iterable[Any]:
        stats = self.pool.get_stats()
        name = [self.pool.name]
        count = GaugeMetricFamily(
            "db_client_connection_count",
            "Connections in the pool by state.",
            labels=[*POOL_LABELS, "db_client_connection_state"],
        )
        idle = stats.get("pool_available", 0)
        count.add_metric([*name, "used"], stats.get("pool_size", 0) - idle)
        count.add_metric([*name, "idle"], idle)
        yield count
        maximum = GaugeMetricFamily("db_client_connection_max", "Most connections the pool allows.", labels=POOL_LABELS)
        maximum.add_metric(name, stats.get("pool_max", self.pool.max_size))
        yield maximum
        pending = GaugeMetricFamily(
            "db_client_connection_pending_requests", "Requests waiting for a connection.", labels=POOL_LABELS
        )
        pending.add_metric(name, stats.get("requests_waiting", 0))
        yield pending
        timeouts = CounterMetricFamily(
            "db_client_connection_timeouts", "Requests that gave up waiting for a connection.", labels=POOL_LABELS
        )
        timeouts.add_metric(name, stats.get("requests_errors", 0))
        yield timeouts


class Database:
    def __init__(self, url: str, name: str, pool_config: dict[str, Any]) -> None:
        parsed = urlparse(url)
        self.server = (parsed.hostname or "", parsed.port or 5432)
        self.namespace = parsed.path.lstrip("/")
        options = pool_config.get("options", "")
        self.pool = AsyncConnectionPool(
            url,
            name=name,
            min_size=int(pool_config.get("min_size", 1)),
            max_size=int(pool_config.get("max_size", 4)),
            timeout=float(pool_config.get("timeout_seconds", 5)),
            kwargs={"options": options} if options else None,
            open=False,
        )
        REGISTRY.register(PoolCollector(self.pool))

    async def open(self) -> None:
        await self.pool.open(wait=True, timeout=30)

    async def close(self) -> None:
        await self.pool.close()

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[AsyncConnection]:
        started = time.perf_counter()
        async with self.pool.connection() as conn:
            WAIT.labels(self.pool.name).observe(time.perf_counter() - started)
            yield conn

    async def query(
        self, conn: AsyncConnection, sql: str, params: Sequence[Any] | dict[str, Any] = (), *, table: str = ""
    ) -> list[tuple[Any, ...]]:
        operation = sql.split(None, 1)[0].upper()
        with tracer.start_as_current_span(
            f"{operation} {self.namespace}.{table}" if table else operation, kind=SpanKind.CLIENT
        ) as span:
            span.set_attributes(
                {
                    "db.system.name": "postgresql",
                    "db.system": "postgresql",
                    "db.namespace": self.namespace,
                    "db.operation.name": operation,
                    "db.collection.name": table,
                    "db.query.text": " ".join(sql.split()),
                    "server.address": self.server[0],
                    "server.port": self.server[1],
                }
            )
            started = time.perf_counter()
            try:
                cursor = await conn.execute(sql, params)
                rows = await cursor.fetchall() if cursor.description else []
            except Exception as exc:
                span.set_status(Status(StatusCode.ERROR, str(exc).splitlines()[0]))
                span.set_attribute("error.type", type(exc).__name__)
                span.record_exception(exc)
                raise
            finally:
                OPERATION.labels("postgresql", operation, table).observe(time.perf_counter() - started)
            return rows
