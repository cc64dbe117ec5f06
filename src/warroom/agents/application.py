"""application-incident-specialist: root-cause candidates from logs, traces and metrics, plus the
recent deploys of the top candidate."""

from __future__ import annotations

from typing import ClassVar

import polars as pl

from warroom.agents.base import AgentContext, AgentSpec
from warroom.agents.investigation import candidate_dicts, evidence_dicts, investigate
from warroom.incident import AgentReport, Finding


class ApplicationIncidentSpecialist:
    spec: ClassVar[AgentSpec] = AgentSpec(
        name="application-incident-specialist",
        purpose="Which service and which defect: error logs, request flow, recent deploys.",
        inputs=(),
        outputs=("diagnosis", "evidence", "recent_deploys"),
    )

    def run(self, ctx: AgentContext) -> AgentReport:
        bundle = ctx.bundle
        diagnosis = investigate(bundle)
        top = diagnosis.top()
        deploys: list[dict[str, object]] = []
        if top is not None and bundle.changes is not None:
            alert = bundle.manifest.alert.fired_at
            mine = bundle.changes.filter((pl.col("service") == top.service) & (pl.col("time") <= alert))
            deploys = [
                {k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in row.items()}
                for row in mine.sort("time", descending=True).head(3).iter_rows(named=True)
            ]
        findings: list[Finding] = []
        if top is not None:
            ids = set(top.evidence_ids)
            findings.append(
                Finding(
                    id="finding-root-cause",
                    title=f"Most likely root cause: {top.fault_type} in {top.service}",
                    detail=top.reason,
                    confidence=top.confidence,
                    service=top.service,
                    kind="root_cause",
                    evidence=[e for e in diagnosis.evidence if e.id in ids],
                )
            )
            summary = f"top candidate {top.service} ({top.fault_type}, {top.indicator})"
            if deploys:
                summary += f"; {len(deploys)} recent change(s) to it"
        else:
            summary = "not enough evidence to name a root cause"
        return AgentReport(
            agent=self.spec.name,
            summary=summary,
            findings=findings,
            candidates=diagnosis.candidates,
            outputs={
                "diagnosis": candidate_dicts(diagnosis),
                "evidence": evidence_dicts(diagnosis),
                "recent_deploys": deploys,
            },
            limitations=list(diagnosis.limitations),
        )
