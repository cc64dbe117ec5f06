"""Well-known metric names in an incident bundle (docs/bundle-format.md lists them with units).

Specialists look series up by these names, so any producer of bundles (the scenario generator, an
importer, a live source) agrees with them by writing these names, not by sharing code.
"""

from __future__ import annotations

# Golden signals, per service (and optionally per instance).
REQUEST_RATE = "request_rate"  # requests per second
ERROR_RATE = "error_rate"  # fraction of requests failing, 0..1
LATENCY_P50 = "latency_p50_ms"
LATENCY_P95 = "latency_p95_ms"
LATENCY_P99 = "latency_p99_ms"
SUCCESS_RATE = "success_rate"  # fraction 0..1 (where a system reports success instead of errors)

# Saturation of the service's own resources.
CPU_UTILIZATION = "cpu_utilization"  # fraction of the limit, 0..1
MEMORY_UTILIZATION = "memory_utilization"  # fraction of the limit, 0..1
MEMORY_USAGE_MIB = "memory_usage_mib"  # working set in MiB (a container without a limit has only this)
RESTARTS = "restarts"  # container restarts in the interval (OOM kills show here)

# Database (reported by the service that owns the pool, or by service "database").
DB_POOL_UTILIZATION = "db_pool_utilization"  # in-use / max connections, 0..1
DB_POOL_WAIT_MS = "db_pool_wait_ms"  # time to acquire a connection
DB_POOL_SIZE = "db_pool_size"  # configured maximum connections
DB_CPU_UTILIZATION = "db_cpu_utilization"  # 0..1
DB_LONG_RUNNING_QUERIES = "db_long_running_queries"  # count of queries running > 30 s
DB_LOCK_WAITS = "db_lock_waits"
DB_QUERY_TIME_MS = "db_query_time_ms"
DB_POOL_TIMEOUTS = "db_pool_timeouts"  # connection acquisitions that timed out, per second
DB_CONNECTIONS = "db_connections"  # server-side open connections (service "database")
DB_TABLE_ROWS = "db_table_rows"  # row count of one table; the instance column names the table

# Hosts, network, load balancer (service names are hosts or the balancer).
HOST_CPU_UTILIZATION = "host_cpu_utilization"
NETWORK_LATENCY_MS = "network_latency_ms"
LB_HEALTHY_TARGETS = "lb_healthy_targets"

# Security.
AUTH_FAILURES = "auth_failures"  # failed authentications per second
TLS_CERT_EXPIRY_SECONDS = "tls_cert_expiry_seconds"  # time left on the serving certificate (< 0: expired)

LATENCY_METRICS = (LATENCY_P99, LATENCY_P95, LATENCY_P50)
UTILIZATION_METRICS = (
    DB_POOL_UTILIZATION,
    DB_CPU_UTILIZATION,
    CPU_UTILIZATION,
    MEMORY_UTILIZATION,
    HOST_CPU_UTILIZATION,
)
