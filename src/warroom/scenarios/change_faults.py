"""Scenarios caused by a change other than code: (f) a bad configuration change and (j) a bad
migration that destroys data; plus (i) credential stuffing, a security incident."""

from __future__ import annotations

import numpy as np

from warroom.scenarios.base import (
    NO_EFFECT,
    PARTIAL,
    RECOVERS,
    Change,
    PeriodContext,
    Plan,
    PlanContext,
    Scenario,
    line_containing,
    offending_deploy,
)
from warroom.scenarios.effects import Effects, LogEvents
from warroom.sources import conventions as cv

# caller → callee whose timeout a config change can break, the value meant and the value typed
TIMEOUT_TARGETS = [("checkout", "payment", 100), ("cart", "inventory", 3)]
NIL_PANIC = "panic: runtime error: invalid memory address or nil pointer dereference"
FLAG_TARGETS = [
    ("catalog", "new_pricing_engine", "KeyError: 'price_tier'"),
    ("checkout", "async_inventory_reservation", NIL_PANIC),
]


class BadConfig(Scenario):
    name = "bad-config"
    title = "Bad configuration change (timeout, pool size or feature flag)"
    fault_type = "bad_config"
    path = "application"
    summary = "a config change sets a far too short timeout, a tiny DB pool, or enables a broken feature flag"

    def plan(self, ctx: PlanContext) -> Plan:
        rng = ctx.rng
        variant = ["timeout", "feature_flag", "pool_size"][int(rng.integers(0, 3))]
        at = ctx.target_onset_s - float(rng.uniform(1.0, 3.0)) * 60.0
        params: dict[str, object] = {"variant": variant, "alert": ("gateway", cv.ERROR_RATE, 0.02)}
        if variant == "timeout":
            # A unit slip: the value was meant in seconds (or tenths), the config reads milliseconds.
            caller, callee, wrong = TIMEOUT_TARGETS[int(rng.integers(len(TIMEOUT_TARGETS)))]
            path = f"deploy/{caller}.yaml"
            before = ctx.tree.files[path]
            text = before.replace(f"  {callee}: 2000\n", f"  {callee}: {wrong}\n", 1)
            needle = f"  {callee}: {wrong}"
            summary = f"tighten the {callee} call timeout to {wrong} ms"
            service = caller
            params.update({"caller": caller, "callee": callee, "timeout_ms": float(wrong)})
            kind = "config"
        elif variant == "pool_size":
            # A dropped digit: 20 connections became 2.
            service = "checkout"
            path = f"deploy/{service}.yaml"
            before = ctx.tree.files[path]
            size = ctx.system.services[service].pool_size
            small = size // 10
            text = before.replace(f"  pool_size: {size}\n", f"  pool_size: {small}\n", 1)
            needle = f"  pool_size: {small}"
            summary = f"database pool size {small}"
            params = {"variant": variant, "pool_size": float(small), "path": "database"}
            kind = "config"
        else:
            service, flag, error = FLAG_TARGETS[int(rng.integers(len(FLAG_TARGETS)))]
            path = f"deploy/{service}.yaml"
            before = ctx.tree.files[path]
            text = before.replace("feature_flags:\n", f"feature_flags:\n  {flag}: true\n", 1)
            needle = f"  {flag}: true"
            summary = f"enable feature flag {flag}"
            params.update({"flag": flag, "error": error, "p_error": float(rng.uniform(0.3, 0.6))})
            kind = "feature_flag"
        change, code = offending_deploy(
            ctx, service, at, summary, {path: text}, path, line_containing(text, needle), kind=kind
        )
        actions = {"revert_config": RECOVERS, "rollback": NO_EFFECT, "restart": NO_EFFECT, "scale_out": NO_EFFECT}
        if variant == "pool_size":
            # A larger pool is the revert by another name; more pods bring more (small) pools, which
            # ends the timeouts but not the queueing.
            actions.update({"raise_pool_size": RECOVERS, "scale_out": PARTIAL})
        return Plan(
            service=service,
            onset_s=ctx.target_onset_s,
            fault_start_s=at,
            variant=f"{variant}-{service}",
            actions=actions,
            change=change,
            code=code,
            params=params,
            title=f"{service} failing after a configuration change",
            alert_name="ApiLatencyP99High" if variant == "pool_size" else "ApiErrorRateHigh",
            symptoms=["error_rate_spike", f"{service}_failures"],
        )

    def effects(self, plan: Plan, ctx: PeriodContext) -> Effects:
        times, steps = ctx.times, ctx.times.size
        effects = ctx.new_effects()
        # Config is reloaded by the pods within a minute of the change.
        on = times >= plan.fault_start_s + 45.0
        if ctx.action == "revert_config" and ctx.action_s is not None:
            on = on & (times < ctx.action_s + 45.0)
        if plan.params["variant"] == "pool_size":
            self._small_pool(plan, ctx, effects, on)
        elif plan.params["variant"] == "timeout":
            key = (plan.params["caller"], plan.params["callee"])
            configured = {("checkout", "payment"): 8000.0, ("cart", "inventory"): 2000.0}[key]
            effects.call_timeouts[key] = np.where(on, plan.params["timeout_ms"], configured)
        else:
            svc = ctx.system.services[plan.service]
            effect = effects.service(plan.service, svc.replicas, steps)
            effect.p_error = np.broadcast_to(plan.params["p_error"] * on, (svc.replicas, steps)).copy()
            effect.error_message = plan.params["error"]
            effect.error_status = 500
        return effects

    def _small_pool(self, plan: Plan, ctx: PeriodContext, effects: Effects, on: np.ndarray) -> None:
        """Requests hold a connection for the whole order (payment call included), so a pool
        of two per pod saturates: requests queue for a connection and the slowest time out."""
        svc = ctx.system.services[plan.service]
        replicas, steps, times = svc.replicas, ctx.times.size, ctx.times
        if ctx.action in ("raise_pool_size", "revert_config") and ctx.action_s is not None:
            on = on & (times < ctx.action_s + 45.0)
        pool = np.where(on, plan.params["pool_size"], float(svc.pool_size))[None, :] * np.ones((replicas, 1))
        hold_s = 0.2
        rate = ctx.service_rps[plan.service] / replicas
        demand = (rate * hold_s)[None, :] * ctx.rng.uniform(0.9, 1.1, (replicas, 1))
        rho = demand / pool
        p_hang = np.where(rho < 0.85, 0.0, np.clip(1.0 - 0.85 / rho, 0.0, 1.0))
        wait_ms = np.where(rho < 0.85, hold_s * 1000 * rho / (1 - np.minimum(rho, 0.85)), 1500.0)
        effect = effects.service(plan.service, replicas, steps)
        effect.p_hang = p_hang
        effect.lat_add_ms = wait_ms * (rho >= 0.3)
        effect.hang_ms = 5000.0
        effect.operations = frozenset({"PlaceOrder", "ListOrders"})
        effect.hang_message = "acquire db conn: context deadline exceeded (waited 5s for a free connection)"
        # The small pool's readings replace the healthy ones only while it is configured (NaN keeps
        # the healthy readings, which come from the simulated requests as in the baseline period).
        small = np.broadcast_to(on, (replicas, steps))
        for metric, reading in (
            (cv.DB_POOL_SIZE, pool),
            (cv.DB_POOL_UTILIZATION, np.minimum(demand / pool, 1.0)),
            (cv.DB_POOL_WAIT_MS, wait_ms * (1 - p_hang) + 5000.0 * p_hang),
            (cv.DB_POOL_TIMEOUTS, np.round(rate[None, :] * p_hang, 3)),
        ):
            effects.metrics[(plan.service, metric)] = np.where(small, reading, np.nan)
        # The pods restart to pick up the new pool size.
        effects.rollouts[plan.service] = [ctx.step_of(plan.fault_start_s)] if times[0] <= plan.fault_start_s else []


class CredentialStuffing(Scenario):
    name = "credential-stuffing"
    title = "Credential stuffing: login failures from many sources"
    fault_type = "credential_stuffing"
    path = "application"
    security = True
    summary = "an attacker replays leaked credentials from thousands of addresses; auth saturates"

    def plan(self, ctx: PlanContext) -> Plan:
        rng = ctx.rng
        start = ctx.target_onset_s - 120.0
        return Plan(
            service="auth",
            onset_s=ctx.target_onset_s,
            fault_start_s=start,
            variant=f"x{int(rng.integers(4, 9))}",
            actions={
                "block_sources": RECOVERS,
                "scale_out": PARTIAL,
                "restart": NO_EFFECT,
                "rollback": NO_EFFECT,
            },
            params={
                "multiplier": float(rng.uniform(4.0, 9.0)),
                "sources": int(rng.integers(800, 3000)),
                "alert": ("auth", cv.AUTH_FAILURES, 5.0),
                "seed_ranges": [int(v) for v in rng.integers(1, 250, 6)],
            },
            title="Login failures spiking; auth slow",
            alert_name="AuthFailuresHigh",
            symptoms=["auth_failure_spike", "login_latency", "many_source_addresses"],
            severity_hint="P1",
        )

    def effects(self, plan: Plan, ctx: PeriodContext) -> Effects:
        times, steps, rng = ctx.times, ctx.times.size, ctx.rng
        effects = ctx.new_effects()
        on = np.clip((times - plan.fault_start_s) / 180.0, 0, 1)
        if ctx.action == "block_sources" and ctx.action_s is not None:
            on = on * (times < ctx.action_s + 30.0)
        effects.extra_traffic["/api/login"] = plan.params["multiplier"] * on * np.exp(rng.normal(0, 0.1, steps))
        ranges = plan.params["seed_ranges"]
        ip_rng = np.random.default_rng(ranges)
        n = plan.params["sources"]
        ips = [
            f"{ranges[int(i) % len(ranges)]}.{int(a)}.{int(b)}.{int(c)}"
            for i, a, b, c in zip(
                ip_rng.integers(0, 6, n), ip_rng.integers(0, 255, n), ip_rng.integers(0, 255, n),
                ip_rng.integers(1, 255, n), strict=True,
            )
        ]  # fmt: skip
        users = [f"user{int(v)}@mail.example" for v in ip_rng.integers(0, 10_000_000, 5000)]
        effects.extra_sources["/api/login"] = (ips, users)
        effects.extra_failures["auth:Login"] = (401, "invalid credentials")
        svc = ctx.system.services["auth"]
        replicas = svc.replicas
        if ctx.action == "scale_out":
            replicas = svc.replicas  # already doubled by system_for
        login_share = ctx.system.operation_share("auth", "Login")
        rate = ctx.service_rps["auth"] / replicas
        # Password hashing makes each login expensive (bcrypt): CPU climbs with the attack.
        cpu = svc.cpu_base + svc.cpu_per_rps * rate + 0.02 * rate * login_share * effects.extra_traffic["/api/login"]
        cpu = np.minimum(cpu, 0.97)[None, :] * rng.uniform(0.97, 1.03, (replicas, 1))
        effect = effects.service("auth", replicas, steps)
        effect.lat_mult = 1.0 / (1.0 - np.minimum(cpu, 0.95)) / 1.1
        effects.metrics[("auth", cv.CPU_UTILIZATION)] = np.clip(cpu, 0, 1)
        return effects


class BadMigration(Scenario):
    name = "bad-migration"
    title = "Bad migration destroys data"
    fault_type = "data_loss_migration"
    path = "database"
    data_loss = True
    summary = "a schema migration drops a column or deletes rows it should have kept"

    def plan(self, ctx: PlanContext) -> Plan:
        rng = ctx.rng
        variant = ["drop_column", "delete_all"][int(rng.integers(0, 2))]
        migrations = sorted(p for p in ctx.tree.files if p.startswith("db/migrations/"))
        number = len(migrations) + 1
        if variant == "drop_column":
            path = f"db/migrations/{number:04d}_drop_unused_payment_columns.sql"
            statement = "ALTER TABLE payments DROP COLUMN provider_ref;"
            text = (
                f"-- {number:04d}: drop columns no longer read by the payment service\nBEGIN;\n{statement}\nCOMMIT;\n"
            )
            service, table = "payment", "payments"
            summary = "drop unused payment columns"
        else:
            path = f"db/migrations/{number:04d}_purge_stale_carts.sql"
            statement = "DELETE FROM cart_items;"
            text = (
                f"-- {number:04d}: purge cart items older than 30 days\nBEGIN;\n"
                f"{statement}  -- WHERE added_at < now() - interval '30 days'\nCOMMIT;\n"
            )
            service, table = "cart", "cart_items"
            summary = "purge stale cart items"
        at = ctx.target_onset_s - float(rng.uniform(1.0, 4.0)) * 60.0
        change, code = offending_deploy(
            ctx, "database", at, summary, {path: text}, path, line_containing(text, statement), kind="migration"
        )
        change.service = "database"
        return Plan(
            service="database",
            onset_s=ctx.target_onset_s,
            fault_start_s=at,
            variant=variant,
            # Reverting the migration brings the column back (empty) but cannot bring deleted rows back.
            actions={
                "restore_backup": RECOVERS,
                "rollback": PARTIAL if variant == "drop_column" else NO_EFFECT,
                "restart": NO_EFFECT,
                "scale_out": NO_EFFECT,
            },
            change=change,
            code=code,
            params={
                "variant": variant,
                "table": table,
                "bottleneck": service if variant == "drop_column" else "checkout",
                "alert": ("checkout", cv.ERROR_RATE, 0.05),
            },
            title="Checkout failures after a database migration",
            alert_name="CheckoutErrorRateHigh",
            symptoms=["error_rate_spike", "checkout_failures", f"{table}_data_missing"],
            extra_changes=[
                Change(at - 120.0, "database", "operation", "migrate job started (db/migrations)", author="ci")
            ],
        )

    def effects(self, plan: Plan, ctx: PeriodContext) -> Effects:
        times, steps, rng = ctx.times, ctx.times.size, ctx.rng
        effects = ctx.new_effects()
        broken = times >= plan.fault_start_s
        data_back = np.zeros(steps, dtype=bool)
        if ctx.action is not None and ctx.action_s is not None:
            if ctx.action == "restore_backup":
                # Point-in-time restore to just before the migration takes ~10 minutes.
                data_back = times >= ctx.action_s + 600.0
            elif ctx.action == "rollback":
                # The down-migration re-creates the column, but the values are gone.
                data_back = np.zeros(steps, dtype=bool)
        table = plan.params["table"]
        if plan.params["variant"] == "drop_column":
            fixed_schema = (times >= (ctx.action_s or np.inf) + 60.0) if ctx.action == "rollback" else data_back
            failing = broken & ~data_back & ~fixed_schema
            effect = effects.service("database:INSERT payments", ctx.system.services["database"].replicas, steps)
            effect.p_error = failing[None, :].astype(float)
            effect.error_status = 500
            effect.error_message = 'ERROR: column "provider_ref" of relation "payments" does not exist (SQLSTATE 42703)'
            factor = np.ones(steps)
            lost = broken & ~data_back
            integrity = lost
        else:
            # Carts emptied by the DELETE: checkouts of carts created before it fail; new carts work.
            since = np.maximum(times - plan.fault_start_s, 0.0)
            stale = np.exp(-since / 10_800.0) * (broken & ~data_back)
            effect = effects.service("checkout", ctx.system.services["checkout"].replicas, steps)
            effect.operations = frozenset({"PlaceOrder"})
            effect.p_error = np.broadcast_to(0.85 * stale, effect.p_error.shape).copy()
            effect.error_status = 500
            effect.error_message = "order total is zero: cart items missing for cart (cart_items rows not found)"
            regrow = 1.0 - np.exp(-since / 7200.0)
            factor = np.where(broken & ~data_back, 0.0005 + 0.02 * regrow, 1.0)
            integrity = broken & ~data_back
        effects.table_rows[table] = factor
        # The hourly-ish integrity job runs every few minutes during business hours.
        checks = np.flatnonzero(integrity & (rng.random(steps) < 0.25))
        if checks.size:
            if plan.params["variant"] == "drop_column":
                messages = [
                    "integrity check failed: payments.provider_ref missing; "
                    f"{int(rng.integers(150_000, 900_000))} payments cannot be reconciled"
                    for _ in checks
                ]
            else:
                messages = [f"integrity check failed: {int(rng.integers(40_000, 90_000))} carts reference no cart_items"
                            for _ in checks]  # fmt: skip
            effects.logs.append(
                LogEvents("database", np.zeros(checks.size, dtype=np.int64),
                          times[checks] + rng.uniform(0, ctx.step_s, checks.size), "ERROR", messages)
            )  # fmt: skip
        return effects
