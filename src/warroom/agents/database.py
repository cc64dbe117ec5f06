"""database-incident-specialist: pool, waits and timeouts, long-running queries, locks, database CPU,
missing-index evidence; a complete diagnosis of database faults (service, fault, change) on its own."""

from __future__ import annotations

from typing import Any, ClassVar

from warroom.agents.base import AgentContext, AgentSpec
from warroom.agents.fusion import fuse, outputs, root_cause_finding
from warroom.agents.specialist_common import EvidenceIds, suspect_service
from warroom.analysis.changes import CONFIG_KINDS
from warroom.analysis.database import DatabaseAnalysis
from warroom.incident import AgentReport, Finding, RecommendedAction, RiskLevel
from warroom.sources import conventions as cv


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
        outputs=(
            "diagnosis",
            "evidence",
            "suspect_service",
            "suspect_change",
            "change_ranking",
            "database",
            "database_evidence",
        ),
        aliases=("database-specialist",),
    )

    def run(self, ctx: AgentContext) -> AgentReport:
        fused = fuse(ctx)
        analysis = fused.database
        values, change, correlation = outputs(ctx, fused)
        ids = EvidenceIds("ev-db")
        evidence = [ids.add(e) for e in analysis.evidence]
        findings: list[Finding] = []
        actions: list[RecommendedAction] = []
        top = fused.top()
        service = (top.service if top is not None else None) or analysis.suspect_service or suspect_service(ctx)
        details = database_details(analysis, service)
        details["onset"] = fused.onset.isoformat()
        headline_finding = root_cause_finding(fused, change)
        common = {**values, "database": details}
        if not fused.candidates:
            # Nothing to name: leave the diagnosis of other agents (or its absence) as it is.
            common = {"database": details, "change_ranking": values["change_ranking"]}

        if analysis.fault_type is None:
            summary = (
                "The database is not the bottleneck: pool, CPU, long-running queries and locks stay within "
                "their baseline"
                if analysis.series
                else "Not enough database telemetry to judge the database"
            )
            if top is not None:
                summary += f"; top candidate: {top.fault_type} on {top.service}"
            findings.append(
                Finding(
                    id="f-db-none",
                    title="No database fault found",
                    detail=summary + f" (scores {analysis.scores})",
                    confidence=0.5 if analysis.series else 0.2,
                    kind="observation",
                )
            )
            findings += [headline_finding] if headline_finding is not None else []
            return AgentReport(
                agent=self.spec.name,
                summary=summary,
                findings=findings,
                candidates=fused.candidates,
                outputs=common,
                limitations=analysis.limitations,
            )

        fault = analysis.fault_type
        if correlation is not None and correlation.evidence is not None:
            evidence.append(ids.add(correlation.evidence))
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
        if headline_finding is not None and top is not None and top.fault_type != fault:
            findings.append(headline_finding)  # the database symptom is a consequence of another fault
        change_dict = values["suspect_change"]
        if change is not None:
            findings.append(
                Finding(
                    id="f-db-change",
                    title=f"Most likely trigger: {change.kind} {change.id} of {change.service}"
                    + (f" ({change.version})" if change.version else ""),
                    detail="; ".join(change.reasons),
                    confidence=correlation.confidence if correlation is not None else 0.5,
                    service=change.service,
                    kind="root_cause",
                    evidence=[e for e in evidence if e.source == "changes"],
                )
            )
        rollback_action = None
        if change is not None:
            rollback_action = "revert_config" if change.kind.lower() in CONFIG_KINDS else "rollback"
        actions.extend(self._actions(fault, service, details, rollback_action, change_dict))
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
            outputs={**common, "database_evidence": ids.dumps()},
            candidates=fused.candidates,
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
