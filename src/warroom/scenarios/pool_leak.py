"""Scenario (a): a deploy adds a code path that takes a database connection and does not give it
back. Leaked connections pile up until the pool is empty; then every request of the service waits
for the acquire timeout and fails, and the front door's p99 goes to the timeout."""

from __future__ import annotations

import numpy as np

from warroom.scenarios import code as src
from warroom.scenarios.base import (
    NO_EFFECT,
    PARTIAL,
    RECOVERS,
    TEMPORARY,
    Change,
    CodeChange,
    PeriodContext,
    Plan,
    PlanContext,
    Scenario,
)
from warroom.scenarios.effects import Effects, LogEvents
from warroom.scenarios.system import System
from warroom.sources import conventions as cv

PROMO_SQL = "SELECT discount_pct FROM promotions WHERE code = $1 AND active"


def go_leak(handler: str, struct: str, variant: str) -> tuple[str, str]:
    """Add `applyPromotion` to a Go handler; return the new text and the acquisition line's text."""
    close_on_missing = "\t\tconn.Close()\n" if variant == "error_path" else ""
    close_on_error = "\t\tconn.Close()\n" if variant == "early_return" else ""
    final_close = "" if variant == "no_close" else "\tconn.Close()\n"
    helper = f"""
// applyPromotion returns the discount of an active promotion code (0 when the code is unknown).
func (h *{struct}) applyPromotion(ctx context.Context, code string) (int, error) {{
	conn, err := h.DB.Conn(ctx)
	if err != nil {{
		return 0, err
	}}
	var discount int
	err = conn.QueryRowContext(ctx, `{PROMO_SQL}`, code).Scan(&discount)
	if errors.Is(err, sql.ErrNoRows) {{
{close_on_missing}		return 0, nil
	}}
	if err != nil {{
{close_on_error}		return 0, fmt.Errorf("promotion lookup: %w", err)
	}}
{final_close}	return discount, nil
}}
"""
    text = handler.replace(
        'import (\n\t"database/sql"\n',
        'import (\n\t"context"\n\t"database/sql"\n\t"errors"\n\t"fmt"\n',
        1,
    )
    text = text.replace(
        "\tctx := r.Context()\n",
        '\tctx := r.Context()\n\tif code := r.URL.Query().Get("promo"); code != "" {\n'
        "\t\tif _, err := h.applyPromotion(ctx, code); err != nil {\n"
        '\t\t\th.Log.Warn("promotion ignored", "err", err)\n\t\t}\n\t}\n',
        1,
    )
    return text + helper, "conn, err := h.DB.Conn(ctx)\n\tif err != nil {\n\t\treturn 0, err"


def python_leak(handler: str, function: str, variant: str) -> tuple[str, str]:
    if variant == "error_path":
        body = """    conn = pool.getconn()
    cur = conn.cursor()
    cur.execute("SELECT discount_pct FROM promotions WHERE code = %s AND active", (code,))
    row = cur.fetchone()
    pool.putconn(conn)
    return row[0] if row else 0
"""
        # The happy path returns the connection; an exception in execute/fetchone does not.
    else:
        body = """    conn = pool.getconn()
    cur = conn.cursor()
    cur.execute("SELECT discount_pct FROM promotions WHERE code = %s AND active", (code,))
    row = cur.fetchone()
    if row is None:
        return 0
    pool.putconn(conn)
    return row[0]
"""
    helper = (
        f'\n\ndef _promotion_discount(code):\n    """Discount of an active promotion code, 0 if unknown."""\n{body}'
    )
    text = handler.replace(
        f"def {function}(request):\n",
        f'def {function}(request):\n    if request.args.get("promo"):\n'
        f'        _promotion_discount(request.args["promo"])\n',
        1,
    )
    return text.rstrip(
        "\n"
    ) + "\n" + helper, 'conn = pool.getconn()\n    cur = conn.cursor()\n    cur.execute("SELECT discount_pct'


# Services with a pool and the operation that gains the leaky path (Go first: the seeds' case).
TARGETS = [("checkout", "PlaceOrder"), ("inventory", "Reserve"), ("cart", "AddItem"), ("catalog", "GetProduct")]


def _snake(name: str) -> str:
    return "".join("_" + c.lower() if c.isupper() else c for c in name).lstrip("_")


class PoolLeak(Scenario):
    name = "pool-exhaustion"
    title = "Connection pool exhaustion after a deploy (connection not released on one path)"
    fault_type = "db_pool_exhaustion"
    path = "database"
    summary = "a handler takes a DB connection and does not release it on every path; the pool drains"

    def plan(self, ctx: PlanContext) -> Plan:
        rng = ctx.rng
        seed_pick = int(rng.integers(0, 10))
        # The seeds' case (checkout, Go) for most seeds; other services for variety.
        service, operation = TARGETS[0] if seed_pick < 5 else TARGETS[1 + seed_pick % 3]
        svc = ctx.system.services[service]
        variant = ["no_close", "early_return", "error_path"][int(rng.integers(0, 3))]
        if svc.language == "python" and variant == "no_close":
            variant = "early_return"
        fill_min = float(rng.uniform(12.0, 18.0))
        onset = ctx.target_onset_s
        deploy = onset - fill_min * 60.0
        op_share = ctx.system.operation_share(service, operation)
        per_replica = float(ctx.expected_rps(service, deploy)) * op_share / svc.replicas
        leak_fraction = svc.pool_size / (fill_min * 60.0 * per_replica)
        path = src.handler_path(ctx.system, service, operation)
        handler = ctx.tree.files[path]
        if svc.language == "go":
            struct = f"{operation}Handler"
            text, needle = go_leak(handler, struct, variant)
        else:
            text, needle = python_leak(handler, _snake(operation), variant)
        line = _line_of_block(text, needle)
        author = src.AUTHORS[int(rng.integers(len(src.AUTHORS)))]
        minor = int(rng.integers(10, 40))
        version = f"v1.{minor}.{int(rng.integers(0, 9))}"
        change = Change(
            deploy, service, "deploy", f"{service} {version}: apply promotion codes at checkout",
            version=version, commit_label="offending", author=author[0], offending=True,
        )  # fmt: skip
        message = (
            f"{service}: apply promotion codes when placing an order\n\n"
            "Looks up the discount of the promo code sent by the client.\n"
        )
        return Plan(
            service=service,
            onset_s=onset,
            fault_start_s=deploy,
            variant=f"{svc.language}-{variant}",
            actions={
                "rollback": RECOVERS,
                "fix_forward": RECOVERS,
                "restart": TEMPORARY,
                "recycle_pool": TEMPORARY,
                "raise_pool_size": TEMPORARY,
                "scale_out": PARTIAL,
                "kill_long_queries": NO_EFFECT,
            },
            change=change,
            code=CodeChange(message, {path: text}, path, line, author),
            params={"leak_fraction": leak_fraction, "operation": operation, "fill_min": fill_min, "op_share": op_share},
            title=f"API latency p99 above SLO; {service} failing",
            alert_name="ApiLatencyP99High",
            symptoms=["high_response_times", "error_rate_spike", f"{service}_failures"],
        )

    def effects(self, plan: Plan, ctx: PeriodContext) -> Effects:
        system = ctx.system
        svc = system.services[plan.service]
        times = ctx.times
        steps = times.size
        effects = ctx.new_effects()
        rng = ctx.rng
        pool = float(svc.pool_size)
        replicas = svc.replicas
        rate = ctx.service_rps[plan.service] / replicas  # requests/s per replica (whole service)
        op_rate = rate * float(plan.params["op_share"])
        leak_rate = plan.params["leak_fraction"] * op_rate * rng.uniform(0.85, 1.15, (replicas, 1))
        # When each replica's leak (re)starts: a restart empties the pool, scale_out adds fresh pods.
        leak_from = np.full((replicas, 1), plan.fault_start_s)
        leak_until = np.full((replicas, 1), np.inf)
        action, at = ctx.action, ctx.action_s
        rollout_s = 90.0
        if action is not None and at is not None:
            if action in ("rollback", "fix_forward"):
                leak_until[:] = at
                effects.rollouts[plan.service] = [ctx.step_of(at + rollout_s / 2)]
            elif action in ("restart", "recycle_pool", "raise_pool_size"):
                leak_from[:] = at + rollout_s / 2
                if action != "recycle_pool":
                    effects.rollouts[plan.service] = [ctx.step_of(at + rollout_s / 2)]
            elif action == "scale_out":
                old = replicas // 2
                leak_from[old:] = at + rollout_s
        if action == "raise_pool_size" and at is not None:
            pool_arr = np.where(times[None, :] >= at + rollout_s / 2, pool * 2, pool) * np.ones((replicas, 1))
        else:
            pool_arr = np.full((replicas, steps), pool)
        dt = ctx.step_s
        active = (times[None, :] >= leak_from) & (times[None, :] < leak_until)
        leaked = np.minimum(np.cumsum(leak_rate * active * dt, axis=1), pool_arr)
        if at is not None and action not in ("restart", "recycle_pool", "raise_pool_size"):
            # Connections leaked before the action stay leaked on the pods that keep running.
            before = np.minimum(plan.params["leak_fraction"] * op_rate[0] * (at - plan.fault_start_s), pool)
            carried = np.full((replicas, 1), before)
            if action in ("rollback", "fix_forward"):
                carried = carried * (times[None, :] < at + rollout_s / 2)
            elif action == "scale_out":
                carried[replicas // 2 :] = 0.0
            leaked = np.minimum(leaked + carried, pool_arr)
        hold_s = 0.012  # how long a healthy request holds a connection
        demand = np.maximum(rate * hold_s, 0.01)[None, :] * np.ones((replicas, 1))
        free = pool_arr - leaked
        rho = np.where(free > 0.5, demand / np.maximum(free, 1e-6), 10.0)
        wait_ms = np.where(rho < 0.9, hold_s * 1000 * rho / (1 - np.minimum(rho, 0.9)), 5000.0)
        p_hang = np.clip((rho - 0.75) / 0.35, 0.0, 1.0)
        p_hang = np.where(free <= 0.5, 1.0, p_hang)
        lang = svc.language
        effect = effects.service(plan.service, replicas, steps)
        effect.p_hang = p_hang
        effect.lat_add_ms = np.minimum(wait_ms, 4000.0) * (p_hang < 1)
        effect.hang_ms = 5000.0
        effect.hang_status = 503
        effect.operations = frozenset(_db_operations(system, plan.service))
        if lang == "go":
            effect.hang_message = "acquire db conn: context deadline exceeded (waited 5s for a free connection)"
        else:
            effect.hang_message = "psycopg2.pool.PoolError: connection pool exhausted (timed out after 5.0s)"
        # The leak adds to the pool's healthy readings (which come from the simulated requests, as
        # in the baseline period), so that a mitigation that stops it brings them back to baseline.
        effects.metric_add[(plan.service, cv.DB_POOL_UTILIZATION)] = leaked / pool_arr
        effects.metrics[(plan.service, cv.DB_POOL_SIZE)] = pool_arr
        healthy_rho = demand / pool_arr
        healthy_wait_ms = hold_s * 1000 * healthy_rho / (1 - np.minimum(healthy_rho, 0.9))
        waited_ms = wait_ms * (1 - p_hang) + 5000.0 * p_hang
        effects.metric_add[(plan.service, cv.DB_POOL_WAIT_MS)] = np.maximum(waited_ms - healthy_wait_ms, 0.0)
        db_rate = rate[None, :] * np.ones((replicas, 1))
        effects.metric_add[(plan.service, cv.DB_POOL_TIMEOUTS)] = np.round(db_rate * p_hang, 3)
        effects.metric_add[("database", cv.DB_CONNECTIONS)] = leaked.sum(axis=0)[None, :]
        # The pool monitor of each saturated replica complains every 30 s.
        in_use = np.minimum(leaked + demand, pool_arr)
        saturated = (in_use / pool_arr) >= 0.9
        r_idx, s_idx = np.nonzero(saturated)
        keep = (np.round(times[s_idx]) % 30.0) < ctx.step_s
        r_idx, s_idx = r_idx[keep], s_idx[keep]
        if r_idx.size:
            used = np.round(in_use[r_idx, s_idx]).astype(int)
            waiting = np.round(demand[r_idx, s_idx] * 50 * p_hang[r_idx, s_idx]).astype(int)
            maxes = pool_arr[r_idx, s_idx].astype(int)
            if lang == "go":
                messages = [f"db pool saturated: in_use={u} idle=0 max_open={m} wait_count={w}"
                            for u, m, w in zip(used, maxes, waiting, strict=True)]  # fmt: skip
            else:
                messages = [f"connection pool near capacity: {u}/{m} connections checked out, {w} waiting"
                            for u, m, w in zip(used, maxes, waiting, strict=True)]  # fmt: skip
            effects.logs.append(
                LogEvents(plan.service, r_idx, times[s_idx] + rng.uniform(0, ctx.step_s, r_idx.size), "WARN", messages)
            )
        return effects


def _db_operations(system: System, service: str) -> list[str]:
    ops = src.service_operations(system)
    return [op for op, stmt in ops.get(service, {}).items() if stmt]


def _line_of_block(text: str, block: str) -> int:
    index = text.index(block)
    return text.count("\n", 0, index) + 1
