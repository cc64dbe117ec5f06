"""infrastructure-incident-specialist: host and pod CPU/memory saturation, the network between
services, third-party dependencies and certificates, within the diagnosis engine's answer."""

from __future__ import annotations

from typing import ClassVar

from warroom.agents.base import AgentContext, AgentSpec, Specialist
from warroom.agents.investigation import investigate, outputs, root_cause_finding
from warroom.analysis.faults import path_of
from warroom.incident import AgentReport


class InfrastructureIncidentSpecialist(Specialist):
    spec: ClassVar[AgentSpec] = AgentSpec(
        name="infrastructure-incident-specialist",
        purpose="Hosts and pods (CPU, memory), the network between services (delay seen in traces), "
        "third-party dependencies and certificates.",
        inputs=(),
        outputs=("diagnosis", "diagnosis_summary", "evidence", "suspect_service", "suspect_change", "change_ranking"),
    )

    def run(self, ctx: AgentContext) -> AgentReport:
        diagnosis = investigate(ctx.telemetry)
        values = outputs(diagnosis)
        infra = [h for h in diagnosis.hypotheses if path_of(h.fault_type, h.mechanism) == "infrastructure"]
        findings = [f for f in [root_cause_finding(diagnosis)] if f is not None]
        top = diagnosis.top()
        if infra:
            best = infra[0]
            rank = diagnosis.hypotheses.index(best) + 1
            summary = f"{best.fault_type} on {best.service} (p {best.confidence:.2f}, hypothesis {rank} overall)"
            if top is not None and top is not best:
                summary += f"; the top hypothesis is {top.fault_type} on {top.service}"
        elif top is not None:
            summary = (
                f"no host, pod, network or third-party fault explains the incident; top hypothesis "
                f"{top.fault_type} on {top.service}"
            )
        else:
            summary = "no host, pod, network or third-party fault explains the incident"
        return AgentReport(
            agent=self.spec.name,
            summary=summary,
            findings=findings,
            candidates=diagnosis.candidates,
            outputs=values,
            limitations=list(diagnosis.limitations),
        )
