"""incident-commander / incident-responder: severity, affected systems, scope, roles, comms plan."""

from __future__ import annotations

from typing import Any, ClassVar

import polars as pl

from warroom.agents.base import AgentContext, AgentSpec, Specialist
from warroom.agents.investigation import investigate, summary_dict
from warroom.analysis.golden import ERROR_LEVELS, Signal, golden_signals
from warroom.analysis.severity import CADENCE_MINUTES, measure_severity
from warroom.analysis.signals import (
    certificate_expired,
    change_lead_minutes,
    database_services,
    leaf_services,
    row_count_drop,
)
from warroom.figures import Window
from warroom.incident import AgentReport, Evidence, Finding, Role
from warroom.sources import conventions as c
from warroom.sources.incident_telemetry import IncidentTelemetry

DEFAULT_ROLES = {
    Role.INCIDENT_COMMANDER: "incident-commander",
    Role.TECHNICAL_LEAD: "incident-resolution-coordinator",
    Role.COMMUNICATIONS_LEAD: "incident-communications-specialist",
    Role.SCRIBE: "incident-documentation-specialist",
}


def _peak(signals: list[Signal], metric: str, service: str | None = None) -> Signal | None:
    found = [s for s in signals if s.metric == metric and (service is None or s.service == service)]
    return max(found, key=lambda s: s.peak, default=None)


def _best_ratio(signals: list[Signal], metrics: set[str], services: set[str] | None, floor: float) -> float | None:
    """The largest sustained (window median) ratio to baseline among these series; None if none."""
    ratios = [
        s.current / max(s.baseline, floor)
        for s in signals
        if s.metric in metrics and s.baseline is not None and (services is None or s.service in services)
    ]
    return round(max(ratios), 3) if ratios else None


def _entry_service(telemetry: IncidentTelemetry, signals: list[Signal]) -> str | None:
    """The user-facing front door: declared, alerted on, or the busiest root of the traces."""
    manifest = telemetry.manifest
    if manifest.entry_service:
        return manifest.entry_service
    if manifest.alert.service:
        return manifest.alert.service
    traces = telemetry.traces
    if traces is not None:
        roots = traces.filter(pl.col("parent_span_id").is_null() | (pl.col("parent_span_id") == ""))
        if roots.height:
            return str(roots.group_by("service").len().sort("len", descending=True).item(0, "service"))
    worst = _peak(signals, c.ERROR_RATE)
    return worst.service if worst else None


def _evidence(signal: Signal, ident: str) -> Evidence:
    return Evidence(
        id=ident,
        source=signal.source,
        query=f"{signal.metric}{{service={signal.service}}}",
        start=signal.window_start,
        end=signal.window_end,
        values={
            "baseline_median": signal.baseline,
            "window_median": signal.current,
            "peak": signal.peak,
            "onset": signal.onset.isoformat() if signal.onset else None,
        },
    )


def _scope(telemetry: IncidentTelemetry, service: str | None, window: tuple[Any, Any]) -> tuple[str, dict[str, Any]]:
    """All users or a subset: whether the errors concentrate on a few instances."""
    logs = telemetry.logs
    if logs is None or service is None or "instance" not in logs.columns:
        return "undetermined", {"reason": "no per-instance logs for the affected service"}
    errors = logs.filter(
        (pl.col("service") == service)
        & pl.col("timestamp").is_between(*window)
        & pl.col("level").cast(pl.String).str.to_lowercase().is_in(ERROR_LEVELS)
    )
    instances = logs.filter(pl.col("service") == service).get_column("instance").n_unique()
    if errors.height == 0:
        return "undetermined", {"reason": f"no error-level log lines from {service} in the window"}
    per_instance = errors.group_by("instance").len().sort("len", descending=True)
    top_share = per_instance.item(0, "len") / errors.height
    data = {
        "instances": instances,
        "instances_with_errors": per_instance.height,
        "top_instance_share": round(top_share, 3),
    }
    # Instances, not users: who among the users was affected is the impact analysis' to count.
    if instances > 1 and top_share >= 0.8:
        return f"errors concentrate on instance {per_instance.item(0, 'instance')} of {service}", data
    return f"errors spread over {per_instance.height} of {instances} instances of {service}", data


class IncidentCommander(Specialist):
    spec: ClassVar[AgentSpec] = AgentSpec(
        name="incident-commander",
        aliases=("incident-responder",),
        purpose="Acknowledge and assess: severity from measured impact against the SLO, affected services, "
        "scope, command structure, communication plan, and the signals that choose the investigation path.",
        inputs=(),
        outputs=("incident", "signals"),
    )

    def run(self, ctx: AgentContext) -> AgentReport:
        telemetry = ctx.telemetry
        manifest = telemetry.manifest
        window = manifest.effective_window()
        signals = golden_signals(telemetry.current, telemetry.baseline, window.start, window.end)
        limitations = [f"no {m} in the bundle" for m in telemetry.missing_modalities()]
        entry = _entry_service(telemetry, signals)
        entry_errors = _peak(signals, c.ERROR_RATE, entry) if entry else None
        entry_latency = (
            (_peak(signals, c.LATENCY_P99, entry) or _peak(signals, c.LATENCY_P95, entry)) if entry else None
        )
        affected = sorted(
            {s.service for s in signals if s.deviates and s.metric in (c.ERROR_RATE, c.LATENCY_P99, c.LATENCY_P95)}
        )
        saturated = sorted(
            {s.service for s in signals if s.deviates and s.metric not in (c.ERROR_RATE, c.LATENCY_P99, c.LATENCY_P95)}
        )
        critical = set(manifest.business.critical_services)
        # Severity on a sustained window (analysis.severity), not on the peak of one sample.
        verdict = measure_severity(
            telemetry.current,
            entry,
            Window(start=window.start, end=window.end, basis="incident window"),
            slo_error_rate=manifest.slo.error_rate,
            slo_latency_p99_ms=manifest.slo.latency_p99_ms,
            revenue_flow_failing=bool(critical & set(affected)),
        )
        onsets = [s.onset for s in signals if s.deviates and s.onset is not None]
        started_at = min(onsets) if onsets else None
        worst = _peak([s for s in signals if s.deviates], c.ERROR_RATE)
        scope, scope_data = _scope(telemetry, worst.service if worst else entry, (window.start, window.end))

        evidence: list[Evidence] = []
        findings: list[Finding] = []
        if entry_errors:
            evidence.append(_evidence(entry_errors, "ev-assess-errors"))
        if entry_latency:
            evidence.append(_evidence(entry_latency, "ev-assess-latency"))
        findings.append(
            Finding(
                id="f-assess-severity",
                title=f"Severity {verdict.severity.value} ({verdict.severity.label})",
                detail=verdict.rule,
                confidence=0.9 if (entry_errors or entry_latency) else 0.3,
                service=entry,
                kind="impact",
                evidence=evidence,
            )
        )
        deviating = [s for s in signals if s.deviates]
        deviating.sort(key=lambda s: (s.onset is None, s.onset, -(s.ratio or 0.0)))
        if deviating:
            ev = [_evidence(s, f"ev-assess-{i}") for i, s in enumerate(deviating[:12])]
            findings.append(
                Finding(
                    id="f-assess-affected",
                    title=f"{len(set(affected) | set(saturated))} service(s) deviate from baseline: "
                    + ", ".join(sorted(set(affected) | set(saturated))[:8]),
                    detail="; ".join(
                        f"{s.service} {s.metric} {s.baseline if s.baseline is not None else '?'}→{s.peak:.3g}"
                        for s in deviating[:8]
                    ),
                    confidence=0.8,
                    kind="observation",
                    evidence=ev,
                )
            )
        else:
            findings.append(
                Finding(
                    id="f-assess-affected",
                    title="No golden signal left its baseline band",
                    detail="error rate, latency and saturation stayed within their baseline bands in the window",
                    confidence=0.5,
                    kind="observation",
                )
            )
        findings.append(
            Finding(
                id="f-assess-scope",
                title=f"Error spread: {scope}",
                confidence=0.6,
                service=entry,
                kind="impact",
                evidence=[
                    Evidence(
                        id="ev-assess-scope",
                        source="logs",
                        query=f"level=error service={entry} by instance",
                        start=window.start,
                        end=window.end,
                        values=scope_data,
                    )
                ],
            )
        )

        def peak_of(metric: str) -> float | None:
            best = _peak(signals, metric)
            return round(best.peak, 4) if best else None

        def ratio_of(signal: Signal | None, floor: float) -> float | None:
            if signal is None or signal.baseline is None:
                return None
            return round(signal.peak / max(signal.baseline, floor), 3)

        auth = _peak(signals, c.AUTH_FAILURES)
        # sustained level, not the peak: failed logins are spiky even on a quiet day
        auth_ratio = round(auth.current / max(auth.baseline, 0.1), 3) if auth and auth.baseline is not None else None
        touched = sorted(set(affected) | set(saturated))
        metrics_baseline = telemetry.baseline.metrics if telemetry.baseline is not None else None
        signal_values: dict[str, Any] = {
            "entry_service": entry,
            "error_rate": round(entry_errors.peak, 4) if entry_errors else None,
            "error_rate_ratio": ratio_of(entry_errors, 0.001),
            "latency_p99_ms": round(entry_latency.peak, 1) if entry_latency else None,
            "latency_ratio": ratio_of(entry_latency, 1.0),
            "db_pool_utilization": peak_of(c.DB_POOL_UTILIZATION),
            "db_cpu": peak_of(c.DB_CPU_UTILIZATION),
            "db_long_running_queries": peak_of(c.DB_LONG_RUNNING_QUERIES),
            "cpu_max": peak_of(c.CPU_UTILIZATION),
            "memory_max": peak_of(c.MEMORY_UTILIZATION),
            "host_cpu": peak_of(c.HOST_CPU_UTILIZATION),
            "restarts": peak_of(c.RESTARTS),
            "auth_failure_ratio": auth_ratio,
            "change_lead_min": change_lead_minutes(telemetry.changes, touched, started_at),
            "table_rows_drop": row_count_drop(telemetry.metrics, metrics_baseline, window.start, window.end),
            "db_error_ratio": _best_ratio(signals, {c.ERROR_RATE}, database_services(telemetry.metrics), 0.001),
            "dependency_latency_ratio": _best_ratio(
                signals,
                {c.LATENCY_P99},
                leaf_services(telemetry.topology, telemetry.traces) - database_services(telemetry.metrics),
                1.0,
            ),
            "network_latency_ratio": _best_ratio(signals, {c.NETWORK_LATENCY_MS}, None, 0.1),
            "tls_cert_expired": certificate_expired(telemetry.metrics, window.start, window.end),
            "services_total": len({s.service for s in signals}),
            "services_affected": len(set(affected) | set(saturated)),
        }
        total = signal_values["services_total"] or 1
        signal_values["affected_share"] = round(signal_values["services_affected"] / total, 3)
        # The diagnosis engine's answer chooses the investigation path (the decide conditions of the
        # built-in workflows read `signals.path`); computed once per incident, the path specialists reuse it.
        diagnosis = summary_dict(investigate(telemetry))
        signal_values.update(
            path=diagnosis["path"],
            fault_type=diagnosis["fault_type"],
            diagnosis_confidence=diagnosis["confidence"],
            inconclusive=diagnosis["inconclusive"],
        )

        cadence = manifest.comms.cadence_minutes or CADENCE_MINUTES[verdict.severity]
        roles = {role.value: manifest.roles.get(role.value, agent) for role, agent in DEFAULT_ROLES.items()}
        affected_services = sorted(set(affected) | set(saturated)) or ([entry] if entry else [])
        incident = {
            "id": ctx.incident_id,
            "title": manifest.title,
            "severity": verdict.severity.value,
            "severity_rule": verdict.rule,
            "severity_figures": {name: figure.model_dump(mode="json") for name, figure in verdict.figures().items()},
            "affected_services": affected_services,
            "entry_service": entry,
            "symptoms": manifest.symptoms,
            "scope": scope,
            "started_at": started_at.isoformat() if started_at else None,
            "detected_at": manifest.alert.fired_at.isoformat(),
            # a role the manifest gives to one of the default agents is still held by an agent
            "roles": {
                k: {"name": v, "kind": "agent" if v in DEFAULT_ROLES.values() else "person"} for k, v in roles.items()
            },
            "communication_plan": {
                "cadence_minutes": cadence,
                "audiences": manifest.comms.audiences,
                "source": "incident.yaml"
                if manifest.comms.cadence_minutes
                else f"severity {verdict.severity.value} default",
            },
            "business": manifest.business.model_dump(exclude_none=True),
            "rto_minutes": manifest.objectives.rto_minutes,
            "rpo_minutes": manifest.objectives.rpo_minutes,
        }
        summary = (
            f"{verdict.severity.value} ({verdict.severity.label}): {verdict.rule}. "
            f"Affected: {', '.join(affected_services) or 'none measured'}. {scope}. "
            f"Updates every {cadence:g} min."
        )
        return AgentReport(
            agent=self.spec.name,
            summary=summary,
            findings=findings,
            outputs={"incident": incident, "signals": signal_values},
            limitations=limitations,
        )
