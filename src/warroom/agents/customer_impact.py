"""customer-impact-analyst: the incident's impact figures, computed once over a stated window.

The impact window runs from the first user-facing onset at the entry service (latency or errors
leaving their baseline, `analysis.onset`) to the end of the recorded incident window. Requests,
failures, users, sessions, transactions and the one revenue figure come from `analysis.impact`;
every report and message quotes them from this step's output `impact`.
"""

from __future__ import annotations

from typing import ClassVar

from warroom.agents.base import AgentContext, AgentSpec, Specialist
from warroom.agents.outputs import INCIDENT
from warroom.agents.specialist_common import EvidenceIds
from warroom.analysis.impact import ImpactFacts, analyse_impact
from warroom.analysis.onset import USER_FACING, impact_start, signal_onsets
from warroom.figures import Window, format_time
from warroom.incident import AgentReport, Finding


def impact_summary(facts: ImpactFacts) -> str:
    """One paragraph of the figures, each with its unit; what was not measured is said so."""
    if not facts.failure_rate.known:
        return f"Impact not measured: {facts.failure_rate.method}."
    where = f"at {facts.service}" if facts.service else ""
    parts = [
        f"{facts.failure_rate.text()} of requests {where} failed between {format_time(facts.window.start)} and "
        f"{format_time(facts.window.end)} (baseline {facts.baseline_failure_rate.text()})"
    ]
    if facts.requests.known:
        parts.append(f"{facts.failed_requests.value:,.0f} of {facts.requests.text()} failed")
    if facts.users_affected.known:
        parts.append(facts.scope)
    if facts.failed_transactions.known:
        parts.append(f"{facts.failed_transactions.text()} failed")
    if facts.revenue.known:
        parts.append(f"revenue impact {facts.revenue.text()} ({facts.revenue.basis.value})")
    return "; ".join(parts) + "."


class CustomerImpactAnalyst(Specialist):
    spec: ClassVar[AgentSpec] = AgentSpec(
        name="customer-impact-analyst",
        purpose="Assess customer impact: affected users and sessions, failed transactions, abandoned carts, "
        "revenue impact, and who is affected (all users or a subset).",
        inputs=("incident", "signals"),
        outputs=("impact",),
        aliases=("impact-analyst",),
    )

    def run(self, ctx: AgentContext) -> AgentReport:
        telemetry = ctx.telemetry
        manifest = telemetry.manifest
        incident = ctx.read(INCIDENT)
        entry = (incident.entry_service if incident else None) or manifest.entry_service or manifest.alert.service
        onsets = [o for o in signal_onsets(telemetry, [entry] if entry else []) if o.signal in USER_FACING]
        start, why = impact_start(onsets, entry, manifest.alert.fired_at)
        end = manifest.effective_window().end
        window = Window(start=min(start, end), end=end, basis=f"{why}; to the end of the incident window")
        facts = analyse_impact(
            telemetry.current,
            telemetry.baseline,
            window,
            entry_service=entry,
            revenue_per_minute=manifest.business.revenue_per_minute,
            currency=manifest.business.currency,
        )
        ids = EvidenceIds("ev-impact")
        evidence = [ids.add(e) for e in facts.evidence]
        summary = impact_summary(facts)
        findings = [
            Finding(
                id="f-impact",
                title=f"Customer impact: {facts.failure_rate.text()} of requests failed; {facts.scope}",
                detail=summary,
                confidence=facts.confidence,
                service=facts.service,
                kind="impact",
                evidence=evidence,
            )
        ]
        impact = facts.as_context()
        impact["summary"] = summary
        impact["evidence_ids"] = [e.id for e in evidence]
        return AgentReport(
            agent=self.spec.name,
            summary=summary,
            findings=findings,
            outputs={"impact": impact},
            limitations=facts.limitations,
        )
