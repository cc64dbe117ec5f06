"""database-incident-specialist: pool, waits and timeouts, long-running queries, locks, database CPU,
missing-index evidence; a complete diagnosis of database faults (service, fault, change) on its own."""

from __future__ import annotations

from typing import Any, ClassVar

from warroom.agents.base import AgentContext, AgentSpec
from warroom.agents.specialist_common import EvidenceIds, onset, suspect_service, window
from warroom.analysis.changes import correlate_changes, service_graph
from warroom.analysis.database import DatabaseAnalysis, analyse_database
from warroom.incident import AgentReport, Finding, RecommendedAction, RiskLevel, RootCauseCandidate
from warroom.sources import conventions as cv

INDICATOR = {
    "db_pool_exhaustion": cv.DB_POOL_UTILIZATION,
    "missing_index": cv.DB_CPU_UTILIZATION,
    "db_cpu_saturation": cv.DB_CPU_UTILIZATION,
    "lock_contention": cv.DB_LOCK_WAITS,
}


def _peak(analysis: DatabaseAnalysis, metric: str, service: str | None = None) -> float | None:
    stats = analysis.stat(metric, service) or analysis.stat(metric)
    return round(stats[0].peak, 4) if stats else None


def database_details(analysis: DatabaseAnalysis, service: str | None) -> dict[str, Any]:
    """The `database` context value: the measured numbers the resolution needs."""
    return {
        "fault_type": analysis.fault_type,
        "service": service,
        "database_service": analysis.database_service,
        "pool_utilization": _peak(analysis, cv.DB_POOL_UTILIZATION, service),
        "pool_size": _peak(analysis, cv.DB_POOL_SIZE, service),
        "pool_wait_ms": _peak(analysis, cv.DB_POOL_WAIT_MS, service),
        "pool_timeouts": _peak(analysis, cv.DB_POOL_TIMEOUTS, service),
        "db_cpu": _peak(analysis, cv.DB_CPU_UTILIZATION),
        "long_running_queries": _peak(analysis, cv.DB_LONG_RUNNING_QUERIES),
        "lock_waits": _peak(analysis, cv.DB_LOCK_WAITS),
        "query_time_ms": _peak(analysis, cv.DB_QUERY_TIME_MS, service),
        "slow_query_ms": analysis.slow_query_ms,
        "log_counts": analysis.log_counts,
        "statements": [s.model_dump() for s in analysis.statements[:5]],
        "scores": analysis.scores,
    }


class DatabaseIncidentSpecialist:
    spec: ClassVar[AgentSpec] = AgentSpec(
        name="database-incident-specialist",
        purpose="Investigate database faults: connection-pool utilisation, waits and timeouts, long-running "
        "queries, locks, database CPU and missing indexes; correlate with recent changes.",
        inputs=("incident", "signals"),
        outputs=("diagnosis", "evidence", "suspect_service", "suspect_change", "change_ranking", "database"),
        aliases=("database-specialist",),
    )

    def run(self, ctx: AgentContext) -> AgentReport:
        bundle = ctx.bundle
        start, end = window(ctx)
        analysis = analyse_database(bundle.telemetry, bundle.baseline, start, end)
        ids = EvidenceIds("ev-db")
        evidence = [ids.add(e) for e in analysis.evidence]
        findings: list[Finding] = []
        candidates: list[RootCauseCandidate] = []
        actions: list[RecommendedAction] = []
        outputs: dict[str, Any] = {}
        service = analysis.suspect_service or suspect_service(ctx)
        details = database_details(analysis, service)
        outputs["database"] = details

        if analysis.fault_type is None:
            summary = (
                "The database is not the bottleneck: pool, CPU, long-running queries and locks stay within "
                "their baseline"
                if analysis.series
                else "Not enough database telemetry to judge the database"
            )
            findings.append(
                Finding(
                    id="f-db-none",
                    title="No database fault found",
                    detail=summary + f" (scores {analysis.scores})",
                    confidence=0.5 if analysis.series else 0.2,
                    kind="observation",
                )
            )
            return AgentReport(
                agent=self.spec.name,
                summary=summary,
                findings=findings,
                outputs=outputs,
                limitations=analysis.limitations,
            )

        graph = service_graph(bundle.topology, bundle.traces)
        services = [s for s in (service, analysis.database_service) if s]
        started = onset(ctx, services or None)
        correlation = correlate_changes(bundle.changes, started, service, graph)
        change = correlation.rollback_candidate
        if correlation.evidence is not None:
            change_ev = ids.add(correlation.evidence)
            evidence.append(change_ev)
        fault = analysis.fault_type
        headline = {
            "db_pool_exhaustion": f"{service}'s database connection pool is exhausted",
            "missing_index": f"queries from {service} scan tables without an index: database CPU saturated",
            "db_cpu_saturation": "database CPU saturated by long-running queries",
            "lock_contention": "lock contention in the database",
        }[fault]
        pool = details["pool_utilization"]
        facts = [
            f"pool utilisation peak {pool:.0%}" if pool is not None else None,
            f"pool wait peak {details['pool_wait_ms']:.0f} ms" if details["pool_wait_ms"] is not None else None,
            f"DB CPU peak {details['db_cpu']:.0%}" if details["db_cpu"] is not None else None,
            f"{details['long_running_queries']:.0f} long-running queries" if details["long_running_queries"] else None,
        ]
        detail = "; ".join(f for f in facts if f)
        if fault == "db_pool_exhaustion" and details["db_cpu"] is not None and details["db_cpu"] < 0.85:
            detail += (
                ": the database itself is not busy, so connections are held by the application (a leak or long holds)"
            )
        findings.append(
            Finding(
                id="f-db-fault",
                title=headline,
                detail=detail,
                confidence=round(analysis.confidence, 3),
                service=service,
                kind="bottleneck",
                evidence=[e for e in evidence if e.source != "changes"],
            )
        )
        change_dict = change.as_context() if change is not None else None
        if change is not None:
            findings.append(
                Finding(
                    id="f-db-change",
                    title=f"Most likely trigger: {change.kind} {change.id} of {change.service}"
                    + (f" ({change.version})" if change.version else ""),
                    detail="; ".join(change.reasons),
                    confidence=correlation.confidence,
                    service=change.service,
                    kind="root_cause",
                    evidence=[e for e in evidence if e.source == "changes"],
                )
            )
        reason = detail + (f"; {correlation.verdict}" if change is not None else "")
        candidates.append(
            RootCauseCandidate(
                rank=1,
                service=service or (analysis.database_service or "database"),
                fault_type=fault,
                indicator=INDICATOR[fault],
                confidence=round(analysis.confidence, 3),
                change_id=change.id if change is not None else None,
                reason=reason,
                evidence_ids=[e.id for e in evidence],
            )
        )
        if analysis.database_service and analysis.database_service != service and fault != "db_pool_exhaustion":
            candidates.append(
                RootCauseCandidate(
                    rank=2,
                    service=analysis.database_service,
                    fault_type="db_cpu_saturation",
                    indicator=cv.DB_CPU_UTILIZATION,
                    confidence=round(analysis.confidence * 0.5, 3),
                    reason="the database is where the load lands; the queries come from "
                    + (service or "an application"),
                    evidence_ids=[e.id for e in evidence if e.source == "metrics"],
                )
            )
        actions.extend(self._actions(fault, service, details, correlation.rollback_action, change_dict))
        outputs.update(
            diagnosis=[c.model_dump(mode="json") for c in candidates],
            evidence=ids.dumps(),
            suspect_service=service,
            suspect_change=change_dict,
            change_ranking=[c.as_context() for c in correlation.ranked[:5]],
        )
        details["onset"] = started.isoformat()
        summary = f"{headline} ({detail})." + (
            f" Likely trigger: {change.kind} {change.id} of {change.service} {change.minutes_before_onset:.0f} min "
            "before onset."
            if change is not None
            else " No change correlates with the onset."
        )
        return AgentReport(
            agent=self.spec.name,
            summary=summary,
            findings=findings,
            outputs=outputs,
            candidates=candidates,
            actions=actions,
            limitations=analysis.limitations,
        )

    @staticmethod
    def _actions(
        fault: str,
        service: str | None,
        details: dict[str, Any],
        rollback_action: str | None,
        change: dict[str, Any] | None,
    ) -> list[RecommendedAction]:
        actions: list[RecommendedAction] = []
        if details["long_running_queries"]:
            actions.append(
                RecommendedAction(
                    id="db-kill-long-queries",
                    title="Terminate long-running queries",
                    kind="kill_long_queries",
                    target=details["database_service"] or service,
                    risk=RiskLevel.LOW,
                    rationale=f"{details['long_running_queries']:.0f} queries hold connections and CPU",
                    rollback="none needed: cancelled queries are retried by their callers",
                )
            )
        if fault in ("db_pool_exhaustion", "missing_index") and details["pool_utilization"]:
            actions.append(
                RecommendedAction(
                    id="db-recycle-pool",
                    title=f"Recycle {service}'s connection pool",
                    kind="recycle_pool",
                    target=service,
                    risk=RiskLevel.LOW,
                    rationale=f"pool at {details['pool_utilization']:.0%}: leaked or stuck connections are freed",
                    rollback="none needed: the pool reconnects on demand",
                )
            )
        if fault == "db_pool_exhaustion":
            actions.append(
                RecommendedAction(
                    id="db-raise-pool",
                    title=f"Raise {service}'s pool size",
                    kind="raise_pool_size",
                    target=service,
                    risk=RiskLevel.MEDIUM,
                    rationale="buys time while connections leak; the database has headroom"
                    if (details["db_cpu"] or 0) < 0.85
                    else "buys time; watch database CPU",
                    parameters={"current": details["pool_size"]},
                    rollback="set the pool size back to its previous value",
                )
            )
        if change is not None and rollback_action is not None:
            actions.append(
                RecommendedAction(
                    id="db-rollback",
                    title=f"{'Revert' if rollback_action == 'revert_config' else 'Roll back'} {change['id']} on "
                    f"{change['service']}",
                    kind=rollback_action,
                    target=str(change["service"]),
                    risk=RiskLevel.MEDIUM,
                    priority="short_term",
                    rationale=f"{change['kind']} {change['minutes_before_onset']:.0f} min before onset",
                    parameters={"change_id": change["id"], "version": change.get("version")},
                    rollback=f"re-apply {change['id']}",
                )
            )
        return actions
