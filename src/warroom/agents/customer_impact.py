"""customer-impact-analyst: affected users and sessions, failed transactions, abandoned carts and
revenue impact, from request logs and the manifest's business context."""

from __future__ import annotations

from typing import ClassVar

from warroom.agents.base import AgentContext, AgentSpec
from warroom.agents.specialist_common import EvidenceIds, onset, window
from warroom.analysis.impact import analyse_impact
from warroom.incident import AgentReport, Finding
from warroom.values import as_dict


def _money(value: float | None, currency: str) -> str:
    return "n/a" if value is None else f"{value:,.0f} {currency}"


class CustomerImpactAnalyst:
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
        _, end = window(ctx)
        started = onset(ctx, None)
        incident = as_dict(ctx.context.get("incident"))
        entry = incident.get("entry_service") or manifest.entry_service or manifest.alert.service
        result = analyse_impact(
            telemetry.logs,
            telemetry.baseline.logs if telemetry.baseline is not None else None,
            started,
            end,
            revenue_per_minute=manifest.business.revenue_per_minute,
            currency=manifest.business.currency,
            entry_service=entry if isinstance(entry, str) else None,
        )
        ids = EvidenceIds("ev-impact")
        evidence = [ids.add(e) for e in result.evidence]
        cur = result.currency
        if result.requests:
            summary = (
                f"{result.affected_users} of {result.active_users} users and {result.affected_sessions} sessions hit "
                f"failures ({result.failed_requests} failed requests, {result.failure_ratio:.1%} vs "
                f"{(result.baseline_failure_ratio or 0):.1%} at baseline); {result.failed_transactions} failed "
                f"transactions, {result.abandoned_carts} abandoned carts worth "
                f"{_money(result.abandoned_cart_value, cur)}; "
                f"estimated revenue loss {_money(result.estimated_revenue_loss, cur)} over "
                f"{result.duration_minutes:.0f} min (at risk {_money(result.revenue_at_risk, cur)})."
            )
        else:
            summary = "Not enough evidence to count affected users: no request logs in the window" + (
                f"; revenue at risk {_money(result.revenue_at_risk, cur)} over {result.duration_minutes:.0f} min"
                if result.revenue_at_risk is not None
                else ""
            )
        findings = [
            Finding(
                id="f-impact",
                title=f"Customer impact: {result.scope or 'unknown scope'}, {result.affected_users} users affected",
                detail=summary,
                confidence=result.confidence,
                service=result.scope_service,
                kind="impact",
                evidence=evidence,
            )
        ]
        impact = result.as_context()
        impact["summary"] = summary
        impact["evidence_ids"] = [e.id for e in evidence]
        return AgentReport(
            agent=self.spec.name,
            summary=summary,
            findings=findings,
            outputs={"impact": impact},
            limitations=result.limitations,
        )
