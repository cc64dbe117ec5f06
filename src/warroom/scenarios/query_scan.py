"""Scenario (b): a deploy adds a query whose WHERE column has no index. Every call scans the whole
table; database CPU climbs to ~95 %, every query slows down, the scans run for tens of seconds and
hold the service's connections until its pool is exhausted."""

from __future__ import annotations

import numpy as np

from warroom.scenarios import code as src
from warroom.scenarios.base import (
    NO_EFFECT,
    RECOVERS,
    TEMPORARY,
    PeriodContext,
    Plan,
    PlanContext,
    Scenario,
    go_add_method,
    line_containing,
    offending_deploy,
    python_add_helper,
    ramp,
    snake,
)
from warroom.scenarios.effects import Effects, LogEvents, ServiceEffect
from warroom.scenarios.system import Call, Node, System
from warroom.sources import conventions as cv

# service, operation, table, column (no index on it in 0001_init.sql), what the feature does
TARGETS = [
    ("checkout", "ListOrders", "orders", "customer_email", "list guest orders by e-mail"),
    ("payment", "Charge", "payments", "provider_ref", "skip duplicate charges by provider reference"),
    ("catalog", "GetProduct", "products", "name", "resolve products by their name"),
    ("cart", "AddItem", "cart_items", "product_id", "warn when an item was added to many carts today"),
]
NEW_COLUMNS = {"orders": "coupon_code", "payments": "risk_token", "products": "slug", "cart_items": "source"}


def scan_statement(table: str, column: str) -> str:
    return f"SELECT * FROM {table} WHERE {column} = $1 ORDER BY 1 DESC LIMIT 20"


class MissingIndex(Scenario):
    name = "missing-index"
    title = "Query without an index after a deploy: table scans, database CPU saturated"
    fault_type = "missing_index"
    path = "database"
    summary = "a new query filters on a column without an index; scans pin DB CPU and hold the pool"

    def plan(self, ctx: PlanContext) -> Plan:
        rng = ctx.rng
        service, operation, table, column, feature = TARGETS[int(rng.integers(len(TARGETS)))]
        new_column = bool(rng.integers(0, 2))
        if new_column:
            column = NEW_COLUMNS[table]
        statement = scan_statement(table, column)
        svc = ctx.system.services[service]
        path = src.handler_path(ctx.system, service, operation)
        handler = ctx.tree.files[path]
        if svc.language == "go":
            method = (
                f"\n// lookup{column.title().replace('_', '')} serves the new feature: {feature}.\n"
                f"func (h *{operation}Handler) lookupBy{column.title().replace('_', '')}(ctx context.Context, "
                "key string) (*sql.Rows, error) {\n"
                f"\treturn h.DB.QueryContext(ctx, `{statement}`, key)\n}}\n"
            )
            call = (
                f'\tif key := r.URL.Query().Get("{column}"); key != "" {{\n'
                f"\t\tif rows, err := h.lookupBy{column.title().replace('_', '')}(ctx, key); err == nil {{\n"
                "\t\t\tdefer rows.Close()\n\t\t}\n\t}\n"
            )
            text = go_add_method(handler, method, call, ("context",))
            needle = "return h.DB.QueryContext(ctx, `SELECT * FROM"
        else:
            sql = statement.replace("$1", "%s")
            helper = (
                f"def _lookup_by_{column}(key):\n"
                f'    """{feature.capitalize()}."""\n'
                "    conn = pool.getconn()\n    try:\n        with conn.cursor() as cur:\n"
                f'            cur.execute("{sql}", (key,))\n'
                "            return cur.fetchall()\n    finally:\n        pool.putconn(conn)\n"
            )
            call = f'    if request.args.get("{column}"):\n        _lookup_by_{column}(request.args["{column}"])\n'
            text = python_add_helper(handler, snake(operation), helper, call)
            needle = f'cur.execute("SELECT * FROM {table} WHERE {column}'
        files: dict[str, str | None] = {path: text}
        migrations = sorted(p for p in ctx.tree.files if p.startswith("db/migrations/"))
        if new_column:
            number = len(migrations) + 1
            files[f"db/migrations/{number:04d}_add_{table}_{column}.sql"] = (
                f"-- {number:04d}: {feature}\nALTER TABLE {table} ADD COLUMN {column} TEXT;\n"
            )
        ramp_min = float(rng.uniform(6.0, 10.0))
        deploy = ctx.target_onset_s - ramp_min * 60.0
        change, code = offending_deploy(
            ctx, service, deploy, feature, files, path, line_containing(text, needle),
            body=f"Adds a lookup of {table} by {column}.",
        )  # fmt: skip
        return Plan(
            service=service,
            onset_s=ctx.target_onset_s,
            fault_start_s=deploy,
            variant=f"{svc.language}-{table}.{column}-{'new-column' if new_column else 'existing-column'}",
            actions={
                "rollback": RECOVERS,
                "fix_forward": RECOVERS,
                "kill_long_queries": TEMPORARY,
                "recycle_pool": TEMPORARY,
                "restart": TEMPORARY,
                "raise_pool_size": NO_EFFECT,
                "scale_out": NO_EFFECT,
            },
            change=change,
            code=code,
            params={
                "operation": operation,
                "statement": statement,
                "ramp_min": ramp_min,
                "table": table,
                "bottleneck": "database",
            },
            title=f"API latency p99 above SLO; database CPU saturated; {service} failing",
            alert_name="ApiLatencyP99High",
            symptoms=["high_response_times", "error_rate_spike", "database_cpu_high", f"{service}_failures"],
        )

    def system_for(self, plan: Plan, system: System, action: str | None) -> System:
        scan = Node("database", f"SELECT {plan.params['table']} (lookup)", statement=plan.params["statement"])
        grown = system.with_call(plan.service, plan.params["operation"], Call(scan, timeout_ms=5000.0, gate="scan"))
        return super().system_for(plan, grown, action)

    def effects(self, plan: Plan, ctx: PeriodContext) -> Effects:
        times, steps, rng = ctx.times, ctx.times.size, ctx.rng
        effects = ctx.new_effects()
        deployed = times >= plan.fault_start_s
        load = ramp(times, plan.fault_start_s, plan.params["ramp_min"] * 60.0)
        index_ready = np.zeros(steps, dtype=bool)
        action, at = ctx.action, ctx.action_s
        if action is not None and at is not None:
            if action == "rollback":
                deployed = times < at + 60.0
                load = load * np.clip(1 - (times - at - 60.0) / 120.0, 0, 1)
                effects.rollouts[plan.service] = [ctx.step_of(at + 60.0)]
            elif action == "fix_forward":
                # The index is built CONCURRENTLY in a few minutes; then the lookup uses it.
                index_ready = times >= at + 240.0
                load = load * np.clip(1 - (times - at - 240.0) / 90.0, 0, 1)
                effects.rollouts[plan.service] = [ctx.step_of(at + 60.0)]
            elif action in ("kill_long_queries", "recycle_pool", "restart"):
                # Relief for a few minutes, until new scans pile up again.
                dip = ramp(times, at + 30.0, plan.params["ramp_min"] * 60.0)
                load = np.where(times >= at, dip, load)
                if action == "restart":
                    effects.rollouts[plan.service] = [ctx.step_of(at + 45.0)]
            elif action == "raise_pool_size":
                load = np.minimum(load * 1.05, 1.0)
        effects.gates["scan"] = deployed
        cpu = np.clip(0.13 + 0.82 * load + rng.normal(0, 0.012, steps), 0.05, 0.985)
        contention = ((cpu - 0.13) / 0.85).clip(0, 1) ** 3 * 25.0
        db = ctx.system.services["database"]
        # All statements slow down with the CPU; the scan itself takes seconds to tens of seconds.
        effects.services["database"] = ServiceEffect(
            lat_mult=np.broadcast_to(1.0 + contention, (db.replicas, steps)).copy(),
            lat_add_ms=np.zeros((db.replicas, steps)),
            p_error=np.zeros((db.replicas, steps)),
            p_hang=np.zeros((db.replicas, steps)),
        )
        scan_ms = np.where(index_ready, 2.0, 1800.0 * (1.0 + contention))
        scan_op = f"SELECT {plan.params['table']} (lookup)"
        effects.services[f"database:{scan_op}"] = ServiceEffect(
            lat_mult=np.broadcast_to(scan_ms / db.median_ms, (db.replicas, steps)).copy(),
            lat_add_ms=np.zeros((db.replicas, steps)),
            p_error=np.zeros((db.replicas, steps)),
            p_hang=np.zeros((db.replicas, steps)),
        )
        svc = ctx.system.services[plan.service]
        replicas = svc.replicas
        rate = ctx.service_rps[plan.service] / replicas
        op_share = ctx.system.operation_share(plan.service, plan.params["operation"])
        scans_per_s = rate * op_share * deployed
        # Connections held by scans (Little's law), the caller does not cancel the statement.
        held = scans_per_s * scan_ms / 1000.0
        pool = float(svc.pool_size)
        in_use = np.minimum(held + rate * 0.012, pool)
        rho = (held + rate * 0.012) / pool
        # Past saturation a request gets a connection only when a scan finishes: 1/rho are served.
        p_hang = np.where(
            rho <= 0.8, 0.0, np.where(rho < 1.0, (rho - 0.8) * 2.5 * 0.5, 1.0 - 1.0 / np.maximum(rho, 1e-9))
        )
        jitter = rng.uniform(0.9, 1.1, (replicas, 1))
        effect = effects.service(plan.service, replicas, steps)
        effect.p_hang = np.clip(p_hang[None, :] * jitter, 0, 1)
        effect.hang_ms = 5000.0
        effect.operations = frozenset(
            op for op, stmt in src.service_operations(ctx.system)[plan.service].items() if stmt
        )
        effect.hang_message = (
            "acquire db conn: context deadline exceeded (all connections busy)"
            if svc.language == "go"
            else "psycopg2.pool.PoolError: connection pool exhausted"
        )
        # The scans' connections and waits add to the pool's healthy readings (which come from the
        # simulated requests, as in the baseline period): once the scans stop, the pool reads as before.
        effects.metric_add[(plan.service, cv.DB_POOL_UTILIZATION)] = np.minimum(held, pool)[None, :] * jitter / pool
        effects.metric_add[(plan.service, cv.DB_POOL_WAIT_MS)] = 5000.0 * effect.p_hang
        effects.metric_add[(plan.service, cv.DB_POOL_TIMEOUTS)] = np.round(rate[None, :] * effect.p_hang, 3)
        effects.metrics[("database", cv.DB_CPU_UTILIZATION)] = cpu[None, :]
        long_running = np.minimum(scans_per_s * np.maximum(scan_ms / 1000.0 - 30.0, 0.0), pool * replicas)
        effects.metrics[("database", cv.DB_LONG_RUNNING_QUERIES)] = np.round(long_running)[None, :]
        effects.metric_add[("database", cv.DB_CONNECTIONS)] = (in_use * replicas)[None, :]
        # PostgreSQL logs each scan that completes (log_min_duration_statement); sampled to one per step.
        slow = (scan_ms >= 500.0) & deployed
        s_idx = np.flatnonzero(slow & (rng.random(steps) < 0.8))
        if s_idx.size:
            took = scan_ms[s_idx] * rng.lognormal(0.0, 0.3, s_idx.size)
            messages = [f"duration: {ms:.3f} ms  statement: {plan.params['statement']}" for ms in took]
            at_s = times[s_idx] + rng.uniform(0, ctx.step_s, s_idx.size)
            effects.logs.append(LogEvents("database", np.zeros(s_idx.size, dtype=np.int64), at_s, "WARN", messages))
        return effects
