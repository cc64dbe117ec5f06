"""Turn simulated spans (plus the fault's effects) into the bundle's metrics, logs and traces frames."""

from __future__ import annotations

import hashlib
import zlib
from dataclasses import dataclass

import numpy as np
import polars as pl

from warroom.scenarios.code import SCHEMA
from warroom.scenarios.effects import Effects
from warroom.scenarios.simulate import BACKGROUND, CLIENT, DOWNSTREAM, OK, OWN_ERROR, OWN_HANG, TIMEOUT, Spans
from warroom.scenarios.system import System
from warroom.sources import conventions as cv

TS = pl.Datetime("us", "UTC")

# Ordinary failures that happen on a healthy day (the background error rate), by service kind.
BACKGROUND_ERRORS = {
    "go": [
        "unexpected EOF reading request body",
        "write: broken pipe",
        "read tcp: connection reset by peer",
    ],
    "python": [
        "ConnectionResetError: [Errno 104] Connection reset by peer",
        "ValueError: invalid literal for int() with base 10",
        "KeyError: 'items'",
    ],
    None: ["server closed the connection unexpectedly"],
}

# What a healthy span of an operation logs at INFO (a sample of them).
INFO_TEMPLATES = {
    "PlaceOrder": "order placed",
    "Charge": "charge authorized",
    "Login": "login succeeded",
    "AddItem": "item added to cart",
    "GetCart": "cart loaded",
    "ListProducts": "products listed",
    "GetProduct": "product loaded",
    "Reserve": "stock reserved",
    "CheckStock": "stock checked",
    "ListOrders": "orders listed",
    "ValidateToken": "token validated",
    "Fetch": "fragment served",
}


def pod_name(service: str, replica: int, generation: int, salt: str) -> str:
    """Kubernetes-style pod names: stable per (service, generation), a new hash per rollout."""
    digest = hashlib.sha256(f"{salt}/{service}/{generation}".encode()).hexdigest()
    suffix = hashlib.sha256(f"{salt}/{service}/{generation}/{replica}".encode()).hexdigest()
    alphabet = "bcdfghjklmnpqrstvwxz2456789"
    tail = "".join(alphabet[int(suffix[i : i + 2], 16) % len(alphabet)] for i in range(0, 10, 2))
    return f"{service}-{digest[:9]}-{tail}" if service not in ("database", "cache") else f"{service}-{replica}"


class Instances:
    """Maps (service, replica, step) to a pod name, following the period's rollouts."""

    def __init__(self, system: System, effects: Effects, steps: int, salt: str) -> None:
        self.system = system
        self.effects = effects
        self.steps = steps
        self.salt = salt

    def generation(self, service: str, step: np.ndarray) -> np.ndarray:
        base = self.effects.generation_base.get(service, 0)
        rollouts = np.asarray(sorted(self.effects.rollouts.get(service, [])), dtype=np.int64)
        return base + np.searchsorted(rollouts, step, side="right")

    def column(self, services: list[str], svc: np.ndarray, replica: np.ndarray, step: np.ndarray) -> pl.Series:
        """Pod names for rows given as (service index, replica, step) codes."""
        codes, table = self.codes(services, svc, replica, step)
        return _gather(table, codes)

    def codes(
        self, services: list[str], svc: np.ndarray, replica: np.ndarray, step: np.ndarray
    ) -> tuple[np.ndarray, list[str]]:
        """Per-row indexes into a table of the distinct pod names (no Python loop over rows)."""
        generation = np.zeros(svc.size, dtype=np.int64)
        for s_index in np.unique(svc):
            name = services[int(s_index)]
            if self.effects.rollouts.get(name) or self.effects.generation_base.get(name):
                mask = svc == s_index
                generation[mask] = self.generation(name, step[mask])
        key = (svc.astype(np.int64) * 1000 + generation) * 1000 + replica
        uniq, inverse = np.unique(key, return_inverse=True)
        table = [
            pod_name(services[int(k // 1_000_000)], int(k % 1000), int((k // 1000) % 1000), self.salt) for k in uniq
        ]
        return inverse, table

    def names(self, service: str, replica: np.ndarray, step: np.ndarray) -> np.ndarray:
        gen = self.generation(service, step)
        code = gen * 1000 + replica
        uniq, inverse = np.unique(code, return_inverse=True)
        table = np.array([pod_name(service, int(c % 1000), int(c // 1000), self.salt) for c in uniq] or [""])
        return table[inverse]


def _gather(table: list[str], codes: np.ndarray) -> pl.Series:
    """A string column from a small table of distinct values and per-row codes."""
    return pl.Series(table, dtype=pl.String).gather(pl.Series(np.asarray(codes, dtype=np.int64)))


def _services_of(spans: Spans, rows: np.ndarray) -> pl.Series:
    return _gather(spans.services, spans.service[rows])


def _weighted_quantiles(
    key: np.ndarray, value: np.ndarray, weight: np.ndarray, qs: tuple[float, ...]
) -> tuple[np.ndarray, list[np.ndarray]]:
    """Weighted quantiles of `value` per distinct `key` (vectorised over groups)."""
    order = np.lexsort((value, key))
    k, v, w = key[order], value[order], weight[order]
    uniq, first, counts = np.unique(k, return_index=True, return_counts=True)
    cw = np.cumsum(w)
    base = cw[first] - w[first]
    total = cw[first + counts - 1] - base
    out = []
    for q in qs:
        pos = np.searchsorted(cw, base + q * total, side="left")
        pos = np.clip(pos, first, first + counts - 1)
        out.append(v[pos])
    return uniq, out


def _span_positions(spans: Spans) -> np.ndarray:
    pos = np.full(int(spans.span.max()) + 1 if spans.span.size else 0, -1, dtype=np.int64)
    pos[spans.span] = np.arange(spans.span.size)
    return pos


def build_metrics(
    system: System,
    effects: Effects,
    spans: Spans,
    times: np.ndarray,
    step_s: float,
    instances: Instances,
    rng: np.random.Generator,
) -> pl.DataFrame:
    steps = times.size
    weight = spans.req_weight[spans.request]
    span_step = spans.req_step[spans.request]
    max_r = max(s.replicas for s in system.services.values())
    key = (spans.service.astype(np.int64) * max_r + spans.replica) * steps + span_step
    uniq, (p50, p95, p99) = _weighted_quantiles(key, spans.duration_ms, weight, (0.5, 0.95, 0.99))
    failed = (spans.http_status >= 500).astype(np.float64)
    sum_w = np.bincount(np.searchsorted(uniq, key), weights=weight, minlength=uniq.size)
    sum_err = np.bincount(np.searchsorted(uniq, key), weights=weight * failed, minlength=uniq.size)
    svc_idx = uniq // (max_r * steps)
    rep = (uniq // steps) % max_r
    step = uniq % steps
    series: dict[str, list[np.ndarray]] = {"service": [], "replica": [], "step": [], "metric": [], "value": []}
    metric_names: dict[str, int] = {}

    def emit(svc: np.ndarray, replica: np.ndarray, stp: np.ndarray, metric: str, value: np.ndarray) -> None:
        code = metric_names.setdefault(metric, len(metric_names))
        series["service"].append(svc.astype(np.int32))
        series["replica"].append(replica.astype(np.int32))
        series["step"].append(stp.astype(np.int32))
        series["metric"].append(np.full(svc.size, code, dtype=np.int32))
        series["value"].append(value.astype(np.float64))

    emit(svc_idx, rep, step, cv.REQUEST_RATE, sum_w / 1.0)
    emit(svc_idx, rep, step, cv.ERROR_RATE, sum_err / np.maximum(sum_w, 1e-12))
    emit(svc_idx, rep, step, cv.LATENCY_P50, p50)
    emit(svc_idx, rep, step, cv.LATENCY_P95, p95)
    emit(svc_idx, rep, step, cv.LATENCY_P99, p99)
    # Failed logins (401 answered by the service itself) per second.
    auth_index = spans.services.index("auth") if "auth" in spans.services else -1
    own_401 = (spans.http_status == 401) & (spans.cause == CLIENT) & (spans.cause_service == spans.service)
    is_auth = (spans.service == auth_index) & own_401
    if auth_index >= 0:
        counts = np.bincount(np.searchsorted(uniq, key[is_auth]), weights=weight[is_auth], minlength=uniq.size)
        sel = svc_idx == auth_index
        emit(svc_idx[sel], rep[sel], step[sel], cv.AUTH_FAILURES, counts[sel])

    # Per-replica request rate on a dense grid, for resource models (Little's law, CPU per request).
    names = spans.services
    dense_rate = np.zeros((len(names), max_r, steps))
    dense_rate[svc_idx, rep, step] = sum_w

    # Concurrent DB time per calling replica (Little's law): connections held on average.
    pos = _span_positions(spans)
    db_index = names.index("database") if "database" in names else -1
    is_db = spans.service == db_index
    parent_pos = pos[spans.parent[is_db]]
    caller = spans.service[parent_pos]
    caller_rep = spans.replica[parent_pos]
    busy = np.zeros((len(names), max_r, steps))
    np.add.at(busy, (caller, caller_rep, span_step[is_db]), weight[is_db] * spans.duration_ms[is_db])
    busy /= 1000.0

    noise = rng.normal
    table_series: list[tuple[str, np.ndarray]] = []
    topology = system.topology()
    for s_index, name in enumerate(names):
        svc = system.services[name]
        reps = svc.replicas
        grid_r = np.repeat(np.arange(reps), steps)
        grid_s = np.tile(np.arange(steps), reps)
        shape = (reps, steps)
        svc_arr = np.full(grid_r.size, s_index)

        def value(metric: str, healthy: np.ndarray, svc_name: str = name, shp: tuple[int, int] = shape) -> np.ndarray:
            result = healthy.reshape(shp)
            add = effects.metric_add.get((svc_name, metric))
            if add is not None:
                result = result + add
            override = effects.metrics.get((svc_name, metric))
            if override is not None:
                result = np.where(np.isnan(override), result, override)
            return result.reshape(-1)

        rate = dense_rate[s_index, :reps, :]
        for (svc_name, metric), arr in effects.metrics.items():
            if svc_name == name and metric not in _WRITTEN:
                emit(svc_arr, grid_r, grid_s, metric, arr.reshape(-1)[: grid_r.size])
        if svc.kind == "external":
            continue
        if svc.kind in ("service", "gateway"):
            # Seconds left on each service's serving certificate (renewed every 90 days).
            not_after = times[0] + 86_400.0 * (20 + (zlib.crc32(name.encode()) % 60))
            emit(svc_arr, grid_r, grid_s, cv.TLS_CERT_EXPIRY_SECONDS,
                 value(cv.TLS_CERT_EXPIRY_SECONDS, np.broadcast_to(not_after - times, shape).copy()))  # fmt: skip
            if topology.get(name):
                rtt = 0.35 + 0.05 * np.abs(noise(0, 1, shape))
                emit(svc_arr, grid_r, grid_s, cv.NETWORK_LATENCY_MS, value(cv.NETWORK_LATENCY_MS, rtt))
            cpu = svc.cpu_base + svc.cpu_per_rps * rate + noise(0, 0.012, shape)
            emit(svc_arr, grid_r, grid_s, cv.CPU_UTILIZATION, np.clip(value(cv.CPU_UTILIZATION, cpu), 0.005, 1.0))
            mem = svc.memory_base + 0.015 * np.sin(np.arange(steps) / 40.0 + s_index) + noise(0, 0.004, shape)
            emit(svc_arr, grid_r, grid_s, cv.MEMORY_UTILIZATION, np.clip(value(cv.MEMORY_UTILIZATION, mem), 0.01, 1.0))
            emit(svc_arr, grid_r, grid_s, cv.RESTARTS, value(cv.RESTARTS, np.zeros(shape)))
        if svc.pool_size:
            in_use = busy[s_index, :reps, :] + np.abs(noise(0, 0.15, shape))
            util = value(cv.DB_POOL_UTILIZATION, in_use / svc.pool_size)
            size = value(cv.DB_POOL_SIZE, np.full(shape, float(svc.pool_size)))
            emit(svc_arr, grid_r, grid_s, cv.DB_POOL_UTILIZATION, np.clip(util, 0.0, 1.0))
            emit(svc_arr, grid_r, grid_s, cv.DB_POOL_SIZE, size)
            wait = value(cv.DB_POOL_WAIT_MS, 0.05 + np.abs(noise(0, 0.05, shape)))
            emit(svc_arr, grid_r, grid_s, cv.DB_POOL_WAIT_MS, wait)
            emit(svc_arr, grid_r, grid_s, cv.DB_POOL_TIMEOUTS, value(cv.DB_POOL_TIMEOUTS, np.zeros(shape)))
        if svc.kind == "database":
            total_busy = busy.sum(axis=(0, 1))
            cores = 16.0
            cpu = 0.1 + total_busy * 0.6 / cores + noise(0, 0.01, steps)
            emit(svc_arr, grid_r, grid_s, cv.DB_CPU_UTILIZATION, np.clip(value(cv.DB_CPU_UTILIZATION, cpu), 0.01, 1.0))
            conns = sum(
                busy[i, : system.services[n].replicas, :].sum(axis=0) for i, n in enumerate(names)
                if system.services[n].pool_size
            ) + 20 + noise(0, 1.0, steps)  # fmt: skip
            emit(svc_arr, grid_r, grid_s, cv.DB_CONNECTIONS, np.round(value(cv.DB_CONNECTIONS, np.asarray(conns))))
            long_running = np.zeros(steps)
            emit(svc_arr, grid_r, grid_s, cv.DB_LONG_RUNNING_QUERIES, value(cv.DB_LONG_RUNNING_QUERIES, long_running))
            locks = rng.poisson(0.3, steps).astype(np.float64)
            emit(svc_arr, grid_r, grid_s, cv.DB_LOCK_WAITS, value(cv.DB_LOCK_WAITS, locks))
            stmt_spans = spans.statement >= 0
            db_time = np.bincount(span_step[stmt_spans], weights=weight[stmt_spans] * spans.duration_ms[stmt_spans],
                                  minlength=steps)  # fmt: skip
            db_count = np.bincount(span_step[stmt_spans], weights=weight[stmt_spans], minlength=steps)
            query_ms = value(cv.DB_QUERY_TIME_MS, db_time / np.maximum(db_count, 1e-9))
            emit(svc_arr, grid_r, grid_s, cv.DB_QUERY_TIME_MS, query_ms)
            # Row counts per table: the instance column names the table.
            for table in SCHEMA:
                base_rows = 10_000.0 * (3 + zlib.crc32(table.encode()) % 400)
                growth = 1.0 + (times - times[0]) / 86_400.0 * 0.002
                factor = effects.table_rows.get(table, np.ones(steps))
                rows = np.round(base_rows * growth * factor)
                table_series.append((table, rows))
        if system.extra_metrics and svc.kind == "service":
            for index in range(system.extra_metrics):
                base = 1.0 + index + rate * (0.5 + index % 3)
                emit(
                    svc_arr,
                    grid_r,
                    grid_s,
                    f"runtime_{_EXTRA[index % len(_EXTRA)]}",
                    (base + noise(0, 0.5, shape)).reshape(-1),
                )

    # Row-count series of the database tables: the instance column names the table.
    db_index = names.index("database") if "database" in names else 0
    rows_code = metric_names.setdefault(cv.DB_TABLE_ROWS, len(metric_names))
    for table_index, (_table, rows) in enumerate(table_series):
        series["service"].append(np.full(steps, db_index, dtype=np.int32))
        series["replica"].append(np.full(steps, -1 - table_index, dtype=np.int32))  # negative: a table
        series["step"].append(np.arange(steps, dtype=np.int32))
        series["metric"].append(np.full(steps, rows_code, dtype=np.int32))
        series["value"].append(rows)
    step_col = np.concatenate(series.pop("step"))
    # Time-major order built here, with numpy, so that no copy of the whole frame is sorted later.
    order = np.argsort(step_col, kind="stable")
    step_col = step_col[order]
    columns = {key: np.concatenate(series.pop(key))[order] for key in ("service", "replica", "metric", "value")}
    del order
    svc_col, rep_col = columns["service"], columns["replica"]
    is_table = rep_col < 0
    pod_codes, pod_table = instances.codes(names, svc_col, np.maximum(rep_col, 0), step_col)
    table_names = [t for t, _ in table_series]
    inst_codes = np.where(is_table, len(pod_table) + (-1 - rep_col), pod_codes)
    timestamps = pl.Series("timestamp", (times[step_col] * 1e6).astype(np.int64))
    return pl.DataFrame(
        {
            "timestamp": timestamps.cast(pl.Datetime("us")).dt.replace_time_zone("UTC"),
            "service": _gather(names, svc_col),
            "instance": _gather(pod_table + table_names, inst_codes),
            "metric": _gather(list(metric_names), columns["metric"]),
            "value": np.round(columns["value"], 4),
        }
    )


_EXTRA = (
    "goroutines", "open_fds", "gc_pause_ms", "heap_objects", "net_rx_kbps", "net_tx_kbps",
    "inflight_requests", "queue_depth", "threads", "disk_read_kbps", "disk_write_kbps", "tcp_retransmits",
)  # fmt: skip
_WRITTEN = {
    cv.CPU_UTILIZATION, cv.MEMORY_UTILIZATION, cv.RESTARTS, cv.DB_POOL_UTILIZATION, cv.DB_POOL_SIZE,
    cv.DB_POOL_WAIT_MS, cv.DB_POOL_TIMEOUTS, cv.DB_CPU_UTILIZATION, cv.DB_CONNECTIONS,
    cv.DB_LONG_RUNNING_QUERIES, cv.DB_LOCK_WAITS, cv.TLS_CERT_EXPIRY_SECONDS, cv.NETWORK_LATENCY_MS,
    cv.DB_QUERY_TIME_MS,
}  # fmt: skip


def _jfmt(template: str, *columns: str | pl.Expr) -> pl.Expr:
    """pl.format with `%s` placeholders, so JSON braces need no escaping."""
    return pl.format(template.replace("{", "{{").replace("}", "}}").replace("%s", "{}"), *columns)


@dataclass(frozen=True)
class Population:
    """Who sends the traffic: users, their sessions and addresses (deterministic per seed)."""

    users: int
    salt: int


def _hex(rng: np.random.Generator, n: int, digits: int) -> np.ndarray:
    """`n` random lower-case hex ids of `digits` characters (16 or 32)."""
    words = [rng.integers(0, 2**63, n, dtype=np.int64).tolist() for _ in range(max(1, digits // 16))]
    if len(words) == 1:
        return np.asarray([f"{a:016x}" for a in words[0]], dtype=object)
    return np.asarray([f"{a:016x}{b:016x}" for a, b in zip(words[0], words[1], strict=True)], dtype=object)


def _instances_for(spans: Spans, instances: Instances, rows: np.ndarray) -> pl.Series:
    step = spans.req_step[spans.request[rows]]
    return instances.column(spans.services, spans.service[rows], spans.replica[rows], step)


def request_identity(
    system: System, effects: Effects, spans: Spans, population: Population, rng: np.random.Generator
) -> pl.DataFrame:
    """Per request: trace id, user, session, client address, cart value (for cart and checkout)."""
    n = spans.req_step.size
    # Zipf-like activity: a few users send many requests.
    user = np.minimum((rng.pareto(1.2, n) * 40).astype(np.int64), population.users - 1)
    user = (user * 7919 + population.salt) % population.users
    ip_a = (user * 31 + 7) % 223 + 1
    ip_b = (user * 17 + rng.integers(0, 2, n)) % 254 + 1
    ip_c = (user // 254) % 254 + 1
    ip = np.char.add(
        np.char.add(np.char.add(ip_a.astype(str), "."), np.char.add(((user * 13) % 250 + 1).astype(str), ".")),
        np.char.add(np.char.add(ip_b.astype(str), "."), ip_c.astype(str)),
    )
    users = np.char.add("u-", user.astype(str))
    # A session lasts about half an hour.
    session = np.char.add(
        "s-", np.char.mod("%x", (user * 1_000_003 + (spans.req_time_ms // 1_800_000).astype(np.int64)) % (2**40))
    )
    extra = spans.req_extra
    if extra.any():
        for path, (ips, names) in effects.extra_sources.items():
            which = extra & (np.asarray([e.path for e in system.endpoints])[spans.req_endpoint] == path)
            k = int(which.sum())
            if k:
                ip[which] = np.asarray(ips)[rng.integers(0, len(ips), k)]
                users[which] = np.asarray(names)[rng.integers(0, len(names), k)]
                session[which] = ""
    business = np.asarray([e.business for e in system.endpoints])[spans.req_endpoint]
    cart_value = np.where(
        np.isin(business, ("cart", "checkout")), np.round(rng.lognormal(np.log(70.0), 0.6, n), 2), np.nan
    )
    return pl.DataFrame(
        {
            "trace_id": _hex(rng, n, 32),
            "user_id": users,
            "session_id": session,
            "client_ip": ip,
            "cart_value": cart_value,
        }
    ).with_columns(pl.col("cart_value").fill_nan(None))


def build_logs(
    system: System,
    effects: Effects,
    spans: Spans,
    identity: pl.DataFrame,
    instances: Instances,
    times: np.ndarray,
    step_s: float,
    rng: np.random.Generator,
    info_fraction: float = 0.25,
) -> pl.DataFrame:
    names = np.asarray(spans.services, dtype=object)
    ops = np.asarray(spans.operations, dtype=object)
    endpoints = system.endpoints
    pos = _span_positions(spans)
    parts: list[pl.DataFrame] = []

    def frame(
        rows: np.ndarray, ts_ms: np.ndarray, service: np.ndarray | pl.Series, level: np.ndarray | str,
        message: pl.Series,
        attributes: pl.Series, instance: np.ndarray | pl.Series, with_trace: bool = True,
    ) -> pl.DataFrame:  # fmt: skip
        n = rows.size
        trace = (
            identity["trace_id"].gather(pl.Series(spans.request[rows].astype(np.int64)))
            if with_trace
            else pl.Series([None] * n, dtype=pl.String)
        )
        return pl.DataFrame(
            {
                "timestamp": np.round(ts_ms * 1000).astype(np.int64),
                "service": service,
                "instance": instance,
                "level": np.full(n, level, dtype=object) if isinstance(level, str) else level,
                "message": message,
                "trace_id": trace,
                "attributes": attributes,
            },
            schema={"timestamp": pl.Int64, "service": pl.String, "instance": pl.String, "level": pl.String,
                    "message": pl.String, "trace_id": pl.String, "attributes": pl.String},
        )  # fmt: skip

    # 1. Access logs at the front door: one per request.
    root = np.flatnonzero(spans.parent == -1)
    req = spans.request[root]
    ep = spans.req_endpoint[req]
    method = np.asarray([e.method for e in endpoints], dtype=object)[ep]
    path = np.asarray([e.path for e in endpoints], dtype=object)[ep]
    status = spans.http_status[root].astype(np.int64)
    duration = np.round(spans.duration_ms[root]).astype(np.int64)
    ident = identity.select(pl.all().gather(pl.Series(req)))
    df = pl.DataFrame(
        {"method": method, "path": path, "status": status, "duration": duration},
        schema={"method": pl.String, "path": pl.String, "status": pl.Int64, "duration": pl.Int64},
    ).hstack(ident.drop("trace_id"))
    message = df.select(pl.format("{} {} {} {}ms", "method", "path", "status", "duration")).to_series()
    base_attr = _jfmt(
        '"user_id":"%s","session_id":"%s","client.ip":"%s","http.method":"%s","path":"%s","http.status_code":%s,'
        '"duration_ms":%s',
        "user_id", "session_id", "client_ip", "method", "path", "status", "duration",
    )  # fmt: skip
    attributes = df.select(
        pl.when(pl.col("cart_value").is_not_null())
        .then(_jfmt('{%s,"cart_value":%s}', base_attr, pl.col("cart_value")))
        .otherwise(_jfmt("{%s}", base_attr))
    ).to_series()
    level = np.where(status >= 500, "ERROR", np.where(status >= 400, "WARN", "INFO")).astype(object)
    parts.append(
        frame(root, spans.start_ms[root] + spans.duration_ms[root], _services_of(spans, root), level, message,
              attributes, _instances_for(spans, instances, root))
    )  # fmt: skip

    # 2. Where a failure started: the service logs the fault's message (or an ordinary error).
    # A third party's failures are logged by its caller only.
    external = np.asarray([system.services[n].kind == "external" for n in spans.services])
    origin = np.flatnonzero(np.isin(spans.cause, (OWN_ERROR, OWN_HANG, BACKGROUND)) & ~external[spans.service])
    if origin.size:
        msgs = np.empty(origin.size, dtype=object)
        svc_names = names[spans.service[origin]]
        causes = spans.cause[origin]
        for s_name in np.unique(svc_names):
            effect = effects.services.get(s_name)
            lang = system.services[s_name].language
            for cause in (OWN_ERROR, OWN_HANG, BACKGROUND):
                mask = (svc_names == s_name) & (causes == cause)
                if not mask.any():
                    continue
                if cause == BACKGROUND or effect is None:
                    pool = BACKGROUND_ERRORS.get(lang, BACKGROUND_ERRORS[None])
                    msgs[mask] = np.asarray(pool, dtype=object)[rng.integers(0, len(pool), int(mask.sum()))]
                else:
                    msgs[mask] = effect.error_message if cause == OWN_ERROR else effect.hang_message
        op = ops[spans.operation[origin]]
        message = pl.Series(np.char.add(np.char.add(op.astype(str), ": "), msgs.astype(str)), dtype=pl.String)
        attrs = (
            pl.DataFrame({"op": op, "status": spans.http_status[origin].astype(np.int64)})
            .select(_jfmt('{"operation":"%s","http.status_code":%s}', "op", "status"))
            .to_series()
        )
        parts.append(
            frame(origin, spans.start_ms[origin] + spans.duration_ms[origin], svc_names, "ERROR", message, attrs,
                  _instances_for(spans, instances, origin))
        )  # fmt: skip

    # 2b. Client errors answered by the service itself (bad credentials, declined cards).
    client = np.flatnonzero((spans.cause == CLIENT) & (spans.cause_service == spans.service))
    if client.size:
        svc_names = names[spans.service[client]]
        op = ops[spans.operation[client]]
        msgs = np.empty(client.size, dtype=object)
        for key in {f"{a}:{b}" for a, b in zip(svc_names, op, strict=True)}:
            a, b = key.split(":", 1)
            mask = (svc_names == a) & (op == b)
            reason = (
                effects.extra_failures.get(key, (0, ""))[1]
                or effects.client_errors.get(key, (None, 0, "client error"))[2]
            )
            msgs[mask] = f"{b}: {reason}"
        attrs = (
            pl.DataFrame({"op": op, "status": spans.http_status[client].astype(np.int64)})
            .select(_jfmt('{"operation":"%s","http.status_code":%s}', "op", "status"))
            .to_series()
        )
        parts.append(
            frame(client, spans.start_ms[client] + spans.duration_ms[client], svc_names, "WARN",
                  pl.Series(msgs, dtype=pl.String), attrs, _instances_for(spans, instances, client))
        )  # fmt: skip

    # 3. Callers that saw a dependency fail or time out (not the front door: access logs cover it).
    caller = np.flatnonzero(np.isin(spans.cause, (DOWNSTREAM, TIMEOUT)) & (spans.parent != -1))
    if caller.size:
        origin_name = names[np.maximum(spans.cause_service[caller], 0)].astype(str)
        op = ops[spans.operation[caller]].astype(str)
        is_timeout = spans.cause[caller] == TIMEOUT
        custom = np.asarray(
            [(effects.services[n].caller_message or "") if n in effects.services else "" for n in spans.services],
            dtype=object,
        )[np.maximum(spans.cause_service[caller], 0)].astype(str)
        text = np.where(
            is_timeout,
            np.char.add(np.char.add(op, ": calling "), np.char.add(origin_name, ": context deadline exceeded")),
            np.char.add(
                np.char.add(op, ": dependency "),
                np.char.add(origin_name, np.char.add(" failed with status ", spans.http_status[caller].astype(str))),
            ),
        )
        text = np.where((custom != "") & ~is_timeout, np.char.add(np.char.add(op, ": "), custom), text)
        attrs = (
            pl.DataFrame({"op": op, "dep": origin_name, "status": spans.http_status[caller].astype(np.int64)})
            .select(_jfmt('{"operation":"%s","peer.service":"%s","http.status_code":%s}', "op", "dep", "status"))
            .to_series()
        )
        parts.append(
            frame(caller, spans.start_ms[caller] + spans.duration_ms[caller], _services_of(spans, caller),
                  np.where(is_timeout, "ERROR", "ERROR").astype(object), pl.Series(text, dtype=pl.String), attrs,
                  _instances_for(spans, instances, caller))
        )  # fmt: skip

    # 4. Retries, logged by the caller when it tries again.
    retry = np.flatnonzero(spans.attempt > 0)
    if retry.size:
        parent_rows = pos[spans.parent[retry]]
        callee = names[spans.service[retry]].astype(str)
        op = ops[spans.operation[retry]].astype(str)
        text = np.char.add(
            np.char.add(np.char.add("retrying ", callee), np.char.add(".", op)),
            np.char.add(" (attempt ", np.char.add((spans.attempt[retry] + 1).astype(str), ")")),
        )
        attrs = (
            pl.DataFrame({"dep": callee, "a": spans.attempt[retry].astype(np.int64) + 1})
            .select(_jfmt('{"peer.service":"%s","retry.attempt":%s}', "dep", "a"))
            .to_series()
        )
        parts.append(
            frame(retry, spans.start_ms[retry], _services_of(spans, parent_rows), "WARN",
                  pl.Series(text, dtype=pl.String), attrs, _instances_for(spans, instances, parent_rows))
        )  # fmt: skip

    # 5. A sample of healthy spans log what they did.
    templates = np.asarray([INFO_TEMPLATES.get(o, "") for o in spans.operations], dtype=object)
    healthy = (spans.cause == OK) & (templates[spans.operation] != "") & (rng.random(spans.span.size) < info_fraction)
    info = np.flatnonzero(healthy)
    if info.size:
        dur = np.round(spans.duration_ms[info], 1)
        attrs = (
            pl.DataFrame({"d": dur, "op": _gather(spans.operations, spans.operation[info])})
            .select(_jfmt('{"operation":"%s","duration_ms":%s}', "op", "d"))
            .to_series()
        )
        parts.append(
            frame(info, spans.start_ms[info] + spans.duration_ms[info], _services_of(spans, info), "INFO",
                  _gather([str(t) for t in templates], spans.operation[info]), attrs,
                  _instances_for(spans, instances, info))
        )  # fmt: skip

    # 6. PostgreSQL's log_min_duration_statement (500 ms): slow statements with their text.
    stmts = np.asarray([*spans.statements, ""], dtype=object)
    slow = np.flatnonzero((spans.statement >= 0) & (spans.duration_ms >= 500.0))
    if slow.size:
        text = np.char.add(
            np.char.add("duration: ", np.char.mod("%.3f", spans.duration_ms[slow])),
            np.char.add(" ms  statement: ", stmts[spans.statement[slow]].astype(str)),
        )
        attrs = (
            pl.DataFrame({"d": np.round(spans.duration_ms[slow], 1)})
            .select(_jfmt('{"db.system":"postgresql","duration_ms":%s}', "d"))
            .to_series()
        )
        parts.append(
            frame(slow, spans.start_ms[slow] + spans.duration_ms[slow], _services_of(spans, slow), "WARN",
                  pl.Series(text, dtype=pl.String), attrs, _instances_for(spans, instances, slow))
        )  # fmt: skip

    # 7. Logs outside requests: health checks, and whatever the fault makes a component say.
    steps = times.size
    for name, svc in system.services.items():
        if svc.kind not in ("service", "gateway"):
            continue
        keep = rng.random((svc.replicas, steps)) < 0.35
        r_idx, s_idx = np.nonzero(keep)
        n = r_idx.size
        ts = (times[s_idx] + rng.uniform(0, step_s, n)) * 1000.0
        inst = instances.names(name, r_idx, s_idx)
        parts.append(
            pl.DataFrame(
                {"timestamp": np.round(ts * 1000).astype(np.int64), "service": np.full(n, name, dtype=object),
                 "instance": inst, "level": np.full(n, "DEBUG", dtype=object),
                 "message": np.full(n, "GET /healthz 200", dtype=object), "trace_id": np.full(n, None),
                 "attributes": np.full(n, None)},
                schema=parts[0].schema,
            )
        )  # fmt: skip
    for events in effects.logs:
        n = events.time_s.size
        if n == 0:
            continue
        step_idx = np.clip(((events.time_s - times[0]) // step_s).astype(np.int64), 0, steps - 1)
        parts.append(
            pl.DataFrame(
                {"timestamp": np.round(events.time_s * 1e6).astype(np.int64),
                 "service": np.full(n, events.service, dtype=object),
                 "instance": instances.names(events.service, events.replica, step_idx),
                 "level": np.full(n, events.level, dtype=object), "message": events.messages,
                 "trace_id": np.full(n, None),
                 "attributes": events.attributes if events.attributes is not None else np.full(n, None)},
                schema=parts[0].schema,
            )
        )  # fmt: skip
    logs = pl.concat(parts, how="vertical")
    return logs.with_columns(pl.col("timestamp").cast(pl.Datetime("us")).dt.replace_time_zone("UTC")).sort(
        "timestamp", maintain_order=True
    )


def build_traces(
    spans: Spans, identity: pl.DataFrame, instances: Instances, rng: np.random.Generator, fraction: float
) -> pl.DataFrame:
    """Tail-sampled traces: every request that failed or was slow, and `fraction` of the others."""
    n_req = spans.req_step.size
    root = np.flatnonzero(spans.parent == -1)
    interesting = np.zeros(n_req, dtype=bool)
    interesting[spans.request[root]] = (spans.http_status[root] >= 500) | (spans.duration_ms[root] > 2000)
    keep_req = interesting | (rng.random(n_req) < fraction)
    rows = np.flatnonzero(keep_req[spans.request])
    # Ids only for the kept spans; whole traces are kept, so every parent is among them.
    span_hex = np.full(spans.span.size, None, dtype=object)
    span_hex[rows] = _hex(rng, rows.size, 16)
    pos = _span_positions(spans)
    parent = spans.parent[rows]
    parent_hex = np.where(parent >= 0, span_hex[pos[np.maximum(parent, 0)]], None)
    np.asarray(spans.services, dtype=object)
    np.asarray(spans.operations, dtype=object)
    stmts = np.asarray([*spans.statements, ""], dtype=object)
    failed = (spans.cause[rows] != OK) & (spans.cause[rows] != CLIENT)
    attrs = (
        pl.DataFrame(
            {
                "status": spans.http_status[rows].astype(np.int64),
                "stmt": _gather(
                    list(stmts), np.where(spans.statement[rows] < 0, len(stmts) - 1, spans.statement[rows])
                ),
                "attempt": spans.attempt[rows].astype(np.int64),
            }
        )
        .select(
            pl.when(pl.col("stmt") != "")
            .then(_jfmt('{"db.system":"postgresql","db.statement":"%s","retry.attempt":%s}', "stmt", "attempt"))
            .otherwise(_jfmt('{"http.status_code":%s,"retry.attempt":%s}', "status", "attempt"))
        )
        .to_series()
    )
    start = spans.start_ms[rows]
    frame = pl.DataFrame(
        {
            "trace_id": identity["trace_id"].gather(pl.Series(spans.request[rows].astype(np.int64))),
            "span_id": span_hex[rows],
            "parent_span_id": parent_hex,
            "service": _gather(spans.services, spans.service[rows]),
            "operation": _gather(spans.operations, spans.operation[rows]),
            "start_time": np.round(start * 1000).astype(np.int64),
            "end_time": np.round((start + spans.duration_ms[rows]) * 1000).astype(np.int64),
            "status": np.where(failed, "ERROR", "OK").astype(object),
            "instance": _instances_for(spans, instances, rows),
            "attributes": attrs,
        },
        schema={"trace_id": pl.String, "span_id": pl.String, "parent_span_id": pl.String, "service": pl.String,
                "operation": pl.String, "start_time": pl.Int64, "end_time": pl.Int64, "status": pl.String,
                "instance": pl.String, "attributes": pl.String},
    )  # fmt: skip
    return frame.with_columns(
        pl.col("start_time", "end_time").cast(pl.Datetime("us")).dt.replace_time_zone("UTC")
    ).sort("start_time", maintain_order=True)
