"""security-incident-analyst: authentication-failure spikes, unusual sources, privilege changes and
data-integrity checks; clears the incident as non-security or escalates it, with evidence."""

from __future__ import annotations

from typing import ClassVar

from warroom.agents.base import AgentContext, AgentSpec, Specialist
from warroom.agents.specialist_common import EvidenceIds, window
from warroom.analysis.networks import listed
from warroom.analysis.security import analyse_security
from warroom.incident import AgentReport, Finding, RecommendedAction, RiskLevel


class SecurityIncidentAnalyst(Specialist):
    spec: ClassVar[AgentSpec] = AgentSpec(
        name="security-incident-analyst",
        purpose="Check for breach indicators (auth-failure spikes, unusual sources, privilege changes) and data "
        "integrity; clear the incident as non-security or escalate it.",
        inputs=("incident", "signals"),
        outputs=("security",),
        aliases=("security-analyst",),
    )

    def run(self, ctx: AgentContext) -> AgentReport:
        telemetry = ctx.telemetry
        start, end = window(ctx)
        result = analyse_security(telemetry.current, telemetry.baseline, start, end)
        ids = EvidenceIds("ev-sec")
        findings: list[Finding] = []
        for check in result.checks:
            evidence = [ids.add(check.evidence)] if check.evidence is not None else []
            findings.append(
                Finding(
                    id=f"f-sec-{check.name}",
                    title=f"{check.name.replace('_', ' ')}: {check.status}",
                    detail=check.detail,
                    confidence=0.8 if check.status == "alert" else 0.6 if check.status == "ok" else 0.1,
                    kind="security",
                    evidence=evidence,
                )
            )
        actions: list[RecommendedAction] = []
        if "credential_attack" in result.categories:
            actions.append(
                RecommendedAction(
                    id="sec-block-sources",
                    title="Block or rate-limit the attacking sources at the edge",
                    kind="block_sources",
                    target=telemetry.manifest.entry_service or telemetry.manifest.alert.service,
                    risk=RiskLevel.MEDIUM,
                    rationale=f"{result.sources.get('distinct_ips', 0):.0f} source IPs, "
                    f"{result.sources.get('new_ip_share', 0):.0%} never seen before"
                    + (f"; in {listed(result.attack_networks)}" if result.attack_networks else ""),
                    rollback="remove the block rule",
                )
            )
        if "data_integrity" in result.categories:
            actions.append(
                RecommendedAction(
                    id="sec-restore-backup",
                    title="Restore the affected tables from the last good backup (point-in-time)",
                    kind="restore_backup",
                    risk=RiskLevel.HIGH,
                    priority="short_term",
                    rationale="row counts or integrity errors show data was lost or corrupted",
                    rollback="keep a snapshot of the current state before restoring",
                )
            )
        security = result.as_context()
        security["evidence_ids"] = [e.id for e in ids.items]
        alerts = [c.detail for c in result.checks if c.status == "alert"]
        summary = (
            f"ESCALATE ({', '.join(result.categories)}): " + "; ".join(alerts)
            if result.verdict == "escalate"
            else "Cleared: no breach indicator (" + "; ".join(c.detail for c in result.checks if c.status == "ok") + ")"
        )
        return AgentReport(
            agent=self.spec.name,
            summary=summary,
            findings=findings,
            outputs={"security": security},
            actions=actions,
            limitations=result.limitations,
        )
