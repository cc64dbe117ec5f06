"""Scenarios (c) CPU saturation of one service under a traffic surge, and (d) a memory leak after a
deploy that ends in OOM kills and restarts."""

from __future__ import annotations

import numpy as np

from warroom.scenarios import code as src
from warroom.scenarios.base import (
    NO_EFFECT,
    PARTIAL,
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
from warroom.scenarios.effects import Effects, LogEvents
from warroom.scenarios.system import System
from warroom.sources import conventions as cv

# service → the front-door paths whose traffic surges
SURGE_TARGETS = {
    "catalog": ("/api/products", "/api/products/{id}"),
    "cart": ("/api/cart/items", "/api/cart"),
}


def _service_share_of(system: System, service: str, paths: tuple[str, ...]) -> float:
    """Fraction of a service's spans that come from requests to `paths`."""
    inside = total = 0.0
    for endpoint in system.endpoints:
        count = _count(endpoint.root, service)
        total += endpoint.share * count
        if endpoint.path in paths:
            inside += endpoint.share * count
    return inside / total if total else 0.0


def _count(node: object, service: str) -> int:
    from warroom.scenarios.system import Node

    assert isinstance(node, Node)
    return (node.service == service) + sum(_count(c.node, service) for c in node.calls)


class CpuSaturation(Scenario):
    name = "cpu-saturation"
    title = "CPU saturation of one service under a traffic surge"
    fault_type = "load_saturation"
    path = "infrastructure"
    summary = "a surge (campaign or crawler) drives one service's replicas to 100 % CPU; requests queue and time out"

    def plan(self, ctx: PlanContext) -> Plan:
        rng = ctx.rng
        service = sorted(SURGE_TARGETS)[int(rng.integers(len(SURGE_TARGETS)))]
        paths = SURGE_TARGETS[service]
        crawler = bool(rng.integers(0, 2))
        svc = ctx.system.services[service]
        start = ctx.target_onset_s - float(rng.uniform(3.0, 6.0)) * 60.0
        per_replica = float(ctx.expected_rps(service, start)) / svc.replicas
        u0 = svc.cpu_base + svc.cpu_per_rps * per_replica
        target = float(rng.uniform(1.25, 1.6))  # demand at the peak of the surge, in replicas' worth of CPU
        share = _service_share_of(ctx.system, service, paths)
        # Only the per-request part of the CPU grows with the surge.
        multiplier = ((target - svc.cpu_base) / (u0 - svc.cpu_base) - 1.0) / max(share, 1e-6)
        actions = {"scale_out": RECOVERS, "restart": NO_EFFECT, "rollback": NO_EFFECT, "raise_pool_size": NO_EFFECT}
        actions["block_sources"] = RECOVERS if crawler else NO_EFFECT
        if crawler:
            actions = {"block_sources": RECOVERS, **actions}
        subnet = f"{int(rng.integers(20, 220))}.{int(rng.integers(0, 255))}.{int(rng.integers(0, 255))}"
        return Plan(
            service=service,
            onset_s=ctx.target_onset_s,
            fault_start_s=start,
            variant=("crawler" if crawler else "campaign") + f"-{service}",
            actions=actions,
            params={"paths": paths, "multiplier": multiplier, "u0": u0, "crawler": crawler, "subnet": subnet},
            title=f"API latency p99 above SLO; {service} saturated",
            symptoms=["high_response_times", "traffic_spike", f"{service}_cpu_saturated"],
        )

    def effects(self, plan: Plan, ctx: PeriodContext) -> Effects:
        times, steps, rng = ctx.times, ctx.times.size, ctx.rng
        effects = ctx.new_effects()
        surge = plan.params["multiplier"] * ramp(times, plan.fault_start_s, 180.0)
        action, at = ctx.action, ctx.action_s
        if action == "block_sources" and plan.params["crawler"] and at is not None:
            surge = np.where(times >= at + 30.0, 0.0, surge)
        for path in plan.params["paths"]:
            effects.extra_traffic[path] = surge * (1 + rng.normal(0, 0.03, steps))
            if plan.params["crawler"]:
                ips = [f"{plan.params['subnet']}.{host}" for host in range(11, 17)]
                effects.extra_sources[path] = (ips, ["anonymous"])
        svc = ctx.system.services[plan.service]
        replicas = svc.replicas
        share = _service_share_of(ctx.system, plan.service, plan.params["paths"])
        rate = ctx.service_rps[plan.service] / replicas
        demand = (svc.cpu_base + svc.cpu_per_rps * rate * (1 + share * surge))[None, :] * rng.uniform(
            0.95, 1.05, (replicas, 1)
        )
        if action == "scale_out":
            # Replicas double (system_for) so each one gets half the load; the new pods start in a minute.
            demand = demand * np.where(times >= (at or 0) + 60.0, 1.0, 2.0)[None, :]
        busy = np.minimum(demand, 0.985)
        base_queue = 1.0 / (1.0 - min(plan.params["u0"], 0.9))
        effect = effects.service(plan.service, replicas, steps)
        effect.lat_mult = (1.0 / (1.0 - np.minimum(demand, 0.97))) / base_queue
        effect.p_hang = np.clip(1.0 - 1.0 / np.maximum(demand, 1e-9), 0.0, 1.0)
        effect.hang_ms = 10_000.0
        effect.hang_status = 504
        effect.hang_message = (
            "[CRITICAL] WORKER TIMEOUT: request waited 10s for a worker"
            if svc.language == "python"
            else "http: handler timeout after 10s (cpu throttled)"
        )
        effects.metrics[(plan.service, cv.CPU_UTILIZATION)] = np.clip(busy + rng.normal(0, 0.005, busy.shape), 0, 1)
        return effects


class MemoryLeak(Scenario):
    name = "memory-leak"
    title = "Memory leak after a deploy: OOM kills and restarts"
    fault_type = "memory_leak"
    path = "application"
    summary = "a deploy adds an unbounded in-process cache; memory grows until the container is OOM-killed"

    def plan(self, ctx: PlanContext) -> Plan:
        rng = ctx.rng
        candidates = [
            ("catalog", "GetProduct"),
            ("cart", "GetCart"),
            ("inventory", "CheckStock"),
            ("payment", "Charge"),
        ]
        service, operation = candidates[int(rng.integers(len(candidates)))]
        svc = ctx.system.services[service]
        path = src.handler_path(ctx.system, service, operation)
        handler = ctx.tree.files[path]
        if svc.language == "python":
            helper = (
                "_RESPONSE_CACHE = {}\n\n\n"
                "def _remember(key, value):\n"
                '    """Keep rendered responses to answer repeated requests faster."""\n'
                "    _RESPONSE_CACHE[key] = value\n"
                "    return value\n"
            )
            call = '    _remember((request.path, request.cookies.get("session")), request.args.to_dict())\n'
            text = python_add_helper(handler, snake(operation), helper, call)
            needle = "_RESPONSE_CACHE[key] = value"
        else:
            method = (
                "\n// responseCache keeps recent responses to answer repeated requests faster.\n"
                "var responseCache = map[string][]byte{}\n\n"
                f"func (h *{operation}Handler) remember(key string, body []byte) {{\n"
                "\tresponseCache[key] = body\n}\n"
            )
            call = '\th.remember(r.URL.String()+r.Header.Get("X-Session-Id"), []byte(r.URL.RawQuery))\n'
            text = go_add_method(handler, method, call)
            needle = "responseCache[key] = body"
        fill_min = float(rng.uniform(14.0, 22.0))
        deploy = ctx.target_onset_s - fill_min * 60.0
        change, code = offending_deploy(
            ctx, service, deploy, "cache rendered responses", {path: text}, path, line_containing(text, needle),
            body="Repeated requests are served from memory.",
        )  # fmt: skip
        return Plan(
            service=service,
            onset_s=ctx.target_onset_s,
            fault_start_s=deploy,
            variant=f"{svc.language}-{operation}",
            actions={
                "rollback": RECOVERS,
                "fix_forward": RECOVERS,
                "restart": TEMPORARY,
                "scale_out": PARTIAL,
                "raise_pool_size": NO_EFFECT,
            },
            change=change,
            code=code,
            params={"fill_min": fill_min},
            title=f"API latency spikes and errors; {service} restarting (OOMKilled)",
            symptoms=["error_rate_spike", "pod_restarts", f"{service}_oom"],
        )

    def effects(self, plan: Plan, ctx: PeriodContext) -> Effects:
        times, steps, rng = ctx.times, ctx.times.size, ctx.rng
        effects = ctx.new_effects()
        svc = ctx.system.services[plan.service]
        replicas = svc.replicas
        base = svc.memory_base
        speed = (1.0 - base) / (plan.params["fill_min"] * 60.0) * rng.uniform(0.85, 1.15, replicas)
        action, at = ctx.action, ctx.action_s
        leak_from = np.full(replicas, plan.fault_start_s)
        leaking_until = np.inf
        if action is not None and at is not None:
            if action in ("rollback", "fix_forward"):
                leaking_until = at + 60.0
                effects.rollouts[plan.service] = [ctx.step_of(at + 60.0)]
            elif action == "restart":
                leak_from[:] = at + 30.0
                effects.rollouts[plan.service] = [ctx.step_of(at + 30.0)]
            elif action == "scale_out":
                speed = speed * 0.5  # half the requests per replica: the cache grows half as fast
                leak_from[:] = np.where(np.arange(replicas) >= replicas // 2, at + 60.0, leak_from)
        memory = np.empty((replicas, steps))
        restarts = np.zeros((replicas, steps))
        down = np.zeros((replicas, steps), dtype=bool)
        oom_events: list[tuple[int, float]] = []
        for r in range(replicas):
            level = base
            # Memory already used when the period starts (continuing from the previous period).
            if times[0] > leak_from[r]:
                elapsed = times[0] - leak_from[r]
                level = base + (elapsed * speed[r]) % (1.0 - base)
            restart_wait = 0
            crashes = 0
            for s in range(steps):  # per-replica state machine over a few hundred steps
                t = times[s]
                if t >= leaking_until:
                    level = base
                elif t >= leak_from[r]:
                    level += speed[r] * ctx.step_s
                if restart_wait > 0:
                    restart_wait -= 1
                    down[r, s] = True
                if level >= 1.0:
                    restarts[r, s] = 1
                    oom_events.append((r, t))
                    level = base
                    # Start-up plus CrashLoopBackOff: 10 s, 20 s, 40 s … before the container runs again.
                    crashes += 1
                    restart_wait = max(1, int((45.0 + 10.0 * 2 ** min(crashes - 1, 4)) // ctx.step_s))
                    down[r, s] = True
                memory[r, s] = level + rng.normal(0, 0.004)
        effect = effects.service(plan.service, replicas, steps)
        # Garbage collection works harder as the heap fills; requests to a restarting pod fail.
        pressure = np.clip((memory - 0.8) / 0.2, 0, 1)
        effect.lat_mult = 1.0 + 6.0 * pressure**2
        # Stop-the-world collections on a nearly full heap stall requests for hundreds of milliseconds.
        effect.lat_add_ms = 1500.0 * pressure**3 * rng.random((replicas, steps))
        effect.p_error = np.where(down, 1.0, 0.0)
        effect.error_status = 503
        effect.error_message = "upstream connect error: connection refused (container restarting)"
        effects.metrics[(plan.service, cv.MEMORY_UTILIZATION)] = np.clip(memory, 0, 1)
        effects.metrics[(plan.service, cv.RESTARTS)] = restarts
        if oom_events:
            replica = np.asarray([r for r, _ in oom_events])
            at_s = np.asarray([t for _, t in oom_events]) + rng.uniform(0, ctx.step_s, len(oom_events))
            effects.logs.append(
                LogEvents(plan.service, replica, at_s, "ERROR",
                          ["container killed: OOMKilled (memory limit 512Mi exceeded), restarting"] * len(oom_events))
            )  # fmt: skip
            effects.logs.append(
                LogEvents(plan.service, replica, at_s + 35.0, "INFO", [f"{plan.service} starting"] * len(oom_events))
            )
        return effects
