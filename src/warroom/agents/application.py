"""application-incident-specialist: which service and which defect (the diagnosis engine's answer:
error logs, request flow, memory, the change that caused it), and the recent deploys of the top
candidate."""

from __future__ import annotations

from typing import ClassVar

import polars as pl

from warroom.agents.base import AgentContext, AgentSpec, Specialist
from warroom.agents.investigation import investigate, outputs, root_cause_finding
from warroom.incident import AgentReport, Finding


class ApplicationIncidentSpecialist(Specialist):
    spec: ClassVar[AgentSpec] = AgentSpec(
        name="application-incident-specialist",
        purpose="Which service and which defect: error logs, request flow, memory, recent deploys and config.",
        inputs=(),
        outputs=(
            "diagnosis",
            "diagnosis_summary",
            "evidence",
            "recent_deploys",
            "suspect_service",
            "suspect_change",
            "change_ranking",
        ),
    )

    def run(self, ctx: AgentContext) -> AgentReport:
        telemetry = ctx.telemetry
        diagnosis = investigate(telemetry)
        values = outputs(diagnosis)
        top = diagnosis.top()
        deploys: list[dict[str, object]] = []
        if top is not None and telemetry.changes is not None:
            alert = telemetry.manifest.alert.fired_at
            mine = telemetry.changes.filter((pl.col("service") == top.service) & (pl.col("time") <= alert))
            deploys = [
                {k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in row.items()}
                for row in mine.sort("time", descending=True).head(3).iter_rows(named=True)
            ]
        findings: list[Finding] = []
        headline = root_cause_finding(diagnosis)
        change = values["suspect_change"]
        if headline is not None and top is not None:
            findings.append(headline)
            summary = f"{'inconclusive; leading' if diagnosis.inconclusive else 'top'} candidate {top.service} "
            summary += f"({top.fault_type}, p {top.confidence:.2f})"
            if change is not None:
                summary += f"; caused by {change['kind']} {change['id']}"
            elif deploys:
                summary += f"; {len(deploys)} recent change(s) to it"
        else:
            summary = "not enough evidence to name a root cause"
        return AgentReport(
            agent=self.spec.name,
            summary=summary,
            findings=findings,
            candidates=diagnosis.candidates,
            outputs={**values, "recent_deploys": deploys},
            limitations=list(diagnosis.limitations),
        )
