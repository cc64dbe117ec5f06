"""Scenarios without a bad change of ours: (e) the external payment provider slows down, (g) the
network between two services adds delay, (h) a service's TLS certificate expires."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np

from warroom.scenarios.base import NO_EFFECT, RECOVERS, PeriodContext, Plan, PlanContext, Scenario
from warroom.scenarios.effects import Effects, LogEvents
from warroom.scenarios.system import System
from warroom.sources import conventions as cv


class SlowDependency(Scenario):
    name = "slow-dependency"
    title = "Slow external dependency: the payment provider"
    fault_type = "slow_dependency"
    path = "infrastructure"
    summary = "the external payment provider answers slowly and times out; payments and checkouts fail"

    def plan(self, ctx: PlanContext) -> Plan:
        rng = ctx.rng
        mode = ["slow", "timeouts", "errors"][int(rng.integers(0, 3))]
        return Plan(
            service="payment-provider",
            onset_s=ctx.target_onset_s,
            fault_start_s=ctx.target_onset_s - 60.0,
            variant=mode,
            actions={
                "failover_dependency": RECOVERS,
                "restart": NO_EFFECT,
                "scale_out": NO_EFFECT,
                "rollback": NO_EFFECT,
                "raise_pool_size": NO_EFFECT,
            },
            params={"mode": mode, "factor": float(rng.uniform(8.0, 20.0)), "p_fail": float(rng.uniform(0.2, 0.5))},
            title="Checkout latency and payment failures; payment provider degraded",
            symptoms=["high_response_times", "payment_delays", "checkout_failures"],
        )

    def system_for(self, plan: Plan, system: System, action: str | None) -> System:
        # We cannot scale the provider; scaling out means more payment pods.
        if action == "scale_out":
            return system.with_replicas("payment", system.services["payment"].replicas * 2)
        return system

    def effects(self, plan: Plan, ctx: PeriodContext) -> Effects:
        times, steps, rng = ctx.times, ctx.times.size, ctx.rng
        effects = ctx.new_effects()
        on = (times >= plan.fault_start_s).astype(float) * np.clip((times - plan.fault_start_s) / 120.0, 0, 1)
        if ctx.action == "failover_dependency" and ctx.action_s is not None:
            on = on * (times < ctx.action_s + 60.0)
        mode = plan.params["mode"]
        effect = effects.service("payment-provider", ctx.system.services["payment-provider"].replicas, steps)
        wobble = np.exp(rng.normal(0, 0.15, steps))
        effect.lat_mult = (1.0 + (plan.params["factor"] - 1.0) * on * wobble)[None, :]
        if mode == "timeouts":
            effect.p_hang = (plan.params["p_fail"] * on)[None, :]
            effect.hang_ms = 30_000.0
        elif mode == "errors":
            effect.p_error = (plan.params["p_fail"] * on)[None, :]
            effect.error_status = 503
            effect.error_message = "503 Service Unavailable"
            effect.caller_message = "payment provider returned 503 Service Unavailable (upstream overloaded)"
        return effects


# (caller, callee) pairs whose network path can degrade
NETWORK_PAIRS = [("checkout", "payment"), ("cart", "inventory"), ("gateway", "catalog")]


class NetworkDelay(Scenario):
    name = "network-delay"
    title = "Network delay between two services"
    fault_type = "network_delay"
    path = "infrastructure"
    summary = "the network path between two services adds hundreds of milliseconds and drops packets"

    def plan(self, ctx: PlanContext) -> Plan:
        rng = ctx.rng
        caller, callee = NETWORK_PAIRS[int(rng.integers(len(NETWORK_PAIRS)))]
        return Plan(
            service=callee,
            onset_s=ctx.target_onset_s,
            fault_start_s=ctx.target_onset_s - 30.0,
            variant=f"{caller}->{callee}",
            actions={
                "failover_dependency": RECOVERS,
                "restart": NO_EFFECT,
                "scale_out": NO_EFFECT,
                "rollback": NO_EFFECT,
            },
            params={"caller": caller, "delay_ms": float(rng.uniform(250.0, 700.0))},
            title=f"API latency p99 above SLO; {caller} → {callee} slow",
            symptoms=["high_response_times", "timeouts", f"{caller}_to_{callee}_latency"],
        )

    def effects(self, plan: Plan, ctx: PeriodContext) -> Effects:
        times, steps, rng = ctx.times, ctx.times.size, ctx.rng
        effects = ctx.new_effects()
        on = times >= plan.fault_start_s
        if ctx.action == "failover_dependency" and ctx.action_s is not None:
            on = on & (times < ctx.action_s + 60.0)
        caller = plan.params["caller"]
        delay = plan.params["delay_ms"] * on * np.exp(rng.normal(0, 0.2, steps))
        effects.edge_delay_ms[(caller, plan.service)] = delay
        replicas = ctx.system.services[caller].replicas
        effects.metric_add[(caller, cv.NETWORK_LATENCY_MS)] = np.broadcast_to(2 * delay, (replicas, steps)).copy()
        # The kernel retransmits lost segments; the caller's pods log it now and then.
        r_idx, s_idx = np.nonzero((rng.random((replicas, steps)) < 0.3) & on[None, :])
        if r_idx.size:
            effects.logs.append(
                LogEvents(caller, r_idx, times[s_idx] + rng.uniform(0, ctx.step_s, r_idx.size), "WARN",
                          [f"slow response from {plan.service}: TCP retransmission timeout, rtt={2 * delay[s]:.0f}ms"
                           for s in s_idx])
            )  # fmt: skip
        return effects


class CertificateExpiry(Scenario):
    name = "certificate-expiry"
    title = "Certificate expiry: TLS handshakes to one service fail"
    fault_type = "certificate_expiry"
    path = "infrastructure"
    summary = "a service's serving certificate expires; its callers fail the TLS handshake"

    def plan(self, ctx: PlanContext) -> Plan:
        rng = ctx.rng
        service = ["auth", "inventory", "payment"][int(rng.integers(0, 3))]
        return Plan(
            service=service,
            onset_s=ctx.target_onset_s,
            fault_start_s=ctx.target_onset_s,
            variant=service,
            actions={
                "renew_certificate": RECOVERS,
                "restart": NO_EFFECT,
                "rollback": NO_EFFECT,
                "scale_out": NO_EFFECT,
                "failover_dependency": NO_EFFECT,
            },
            params={"alert": ("gateway", cv.ERROR_RATE, 0.02)},
            title=f"Error rate above SLO; calls to {service} failing",
            alert_name="ApiErrorRateHigh",
            symptoms=["error_rate_spike", "tls_handshake_failures", f"{service}_unreachable"],
        )

    def effects(self, plan: Plan, ctx: PeriodContext) -> Effects:
        times, steps = ctx.times, ctx.times.size
        effects = ctx.new_effects()
        not_after = plan.fault_start_s
        expired = times >= not_after
        left = np.broadcast_to(not_after - times, (ctx.system.services[plan.service].replicas, steps)).copy()
        if ctx.action == "renew_certificate" and ctx.action_s is not None:
            renewed = times >= ctx.action_s + 45.0
            expired = expired & ~renewed
            left = np.where(renewed[None, :], 90 * 86_400.0 - (times - ctx.action_s)[None, :], left)
        replicas = ctx.system.services[plan.service].replicas
        effect = effects.service(plan.service, replicas, steps)
        effect.p_error = np.broadcast_to(expired.astype(float), (replicas, steps)).copy()
        effect.error_status = 502
        stamp = datetime.fromtimestamp(not_after, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        effect.error_message = "http: TLS handshake error: remote error: tls: bad certificate"
        effect.caller_message = (
            f"tls: failed to verify certificate: x509: certificate has expired or is not yet valid: "
            f"current time is after {stamp}"
        )
        effects.metrics[(plan.service, cv.TLS_CERT_EXPIRY_SECONDS)] = left
        return effects
