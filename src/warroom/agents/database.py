"""database-incident-specialist: pool, waits and timeouts, long-running queries, locks, database CPU,
missing-index evidence measured for the report, within the diagnosis engine's answer (service, fault,
change)."""

from __future__ import annotations

from typing import Any, ClassVar

from warroom.agents.base import AgentContext, AgentSpec, Specialist
from warroom.agents.investigation import investigate, outputs, root_cause_finding
from warroom.agents.specialist_common import EvidenceIds, suspect_service, window
from warroom.analysis.changes import is_config_kind
from warroom.analysis.database import DatabaseAnalysis, analyse_database
from warroom.analysis.faults import registry
from warroom.incident import AgentReport, Finding, RecommendedAction, RiskLevel
from warroom.sources import conventions as cv


def _peak(analysis: DatabaseAnalysis, metric: str, service: str | None = None) -> float | None:
    stats = analysis.stat(metric, service) or analysis.stat(metric)
    return round(stats[0].peak, 4) if stats else None


def database_details(analysis: DatabaseAnalysis, service: str | None, fault_type: str | None) -> dict[str, Any]:
    """The `database` context value: the measured numbers the resolution needs."""
    return {
        "fault_type": fault_type,
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
    }


class DatabaseIncidentSpecialist(Specialist):
    spec: ClassVar[AgentSpec] = AgentSpec(
        name="database-incident-specialist",
        purpose="Investigate database faults: connection-pool utilisation, waits and timeouts, long-running "
        "queries, locks, database CPU and missing indexes; correlate with recent changes.",
        inputs=("incident", "signals"),
        outputs=(
            "diagnosis",
            "diagnosis_summary",
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
        diagnosis = investigate(ctx.telemetry)
        start, end = window(ctx)
        analysis = analyse_database(ctx.telemetry.current, ctx.telemetry.baseline, start, end)
        values = outputs(diagnosis)
        ids = EvidenceIds("ev-db")
        evidence = [ids.add(e) for e in analysis.evidence]
        top = diagnosis.top()
        fault = registry().fault_types.get(top.fault_type) if top is not None else None
        database_fault = fault is not None and fault.family == "database"
        service = (top.service if top is not None else None) or suspect_service(ctx)
        details = database_details(analysis, service, top.fault_type if database_fault and top else None)
        details["onset"] = diagnosis.onset.isoformat()
        headline_finding = root_cause_finding(diagnosis)
        common = {**values, "database": details}
        if not diagnosis.candidates:
            # Nothing to name: leave the diagnosis of other agents (or its absence) as it is.
            common = {"database": details, "change_ranking": values["change_ranking"]}
        findings: list[Finding] = []
        if diagnosis.inconclusive or not database_fault or top is None or fault is None:
            summary = (
                "The database is not established as the cause: no database fault type leads the diagnosis conclusively"
                if analysis.series
                else "Not enough database telemetry to judge the database"
            )
            if top is not None:
                summary += f"; top hypothesis: {top.fault_type} on {top.service}"
            findings.append(
                Finding(
                    id="f-db-none",
                    title="No database fault found",
                    detail=summary,
                    confidence=0.5 if analysis.series else 0.2,
                    kind="observation",
                    evidence=evidence,
                )
            )
            findings += [headline_finding] if headline_finding is not None else []
            return AgentReport(
                agent=self.spec.name,
                summary=summary,
                findings=findings,
                candidates=diagnosis.candidates,
                outputs={**common, "database_evidence": ids.dumps()},
                limitations=analysis.limitations,
            )
        change = values["suspect_change"]
        pool = details["pool_utilization"]
        facts = [
            f"pool utilisation peak {pool:.0%}" if pool is not None else None,
            f"pool wait peak {details['pool_wait_ms']:.0f} ms" if details["pool_wait_ms"] is not None else None,
            f"DB CPU peak {details['db_cpu']:.0%}" if details["db_cpu"] is not None else None,
            f"{details['long_running_queries']:.0f} long-running queries" if details["long_running_queries"] else None,
        ]
        detail = "; ".join(f for f in facts if f)
        findings.append(
            Finding(
                id="f-db-fault",
                title=f"{top.fault_type.replace('_', ' ')} on {service}: {fault.description}",
                detail=detail,
                confidence=round(top.confidence, 3),
                service=service,
                kind="bottleneck",
                evidence=evidence,
            )
        )
        if headline_finding is not None:
            findings.append(headline_finding)
        rollback_action = None
        if change is not None:
            rollback_action = "revert_config" if is_config_kind(str(change["kind"])) else "rollback"
            findings.append(
                Finding(
                    id="f-db-change",
                    title=f"Most likely trigger: {change['kind']} {change['id']} of {change['service']}"
                    + (f" ({change['version']})" if change.get("version") else ""),
                    detail="; ".join(change.get("reasons") or []),
                    confidence=float(change.get("score") or 0.5),
                    service=str(change["service"]),
                    kind="root_cause",
                )
            )
        actions = self._actions(top.fault_type, service, details, rollback_action, change)
        summary = f"{top.fault_type.replace('_', ' ')} on {service} ({detail or 'no database series'})." + (
            f" Likely trigger: {change['kind']} {change['id']} of {change['service']} "
            f"{float(change['minutes_before_onset']):.0f} min before onset."
            if change is not None
            else " No change is attributed to it."
        )
        return AgentReport(
            agent=self.spec.name,
            summary=summary,
            findings=findings,
            outputs={**common, "database_evidence": ids.dumps()},
            candidates=diagnosis.candidates,
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
