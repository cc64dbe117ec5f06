"""infrastructure-incident-specialist: host and pod CPU/memory saturation, network delay from traces."""

from __future__ import annotations

from typing import ClassVar

from warroom.agents.base import AgentContext, AgentSpec
from warroom.agents.investigation import candidate_dicts, evidence_dicts, investigate
from warroom.incident import AgentReport

INFRA_FAULTS = ("cpu_contention", "cpu_consumption", "memory", "network_delay")


class InfrastructureIncidentSpecialist:
    spec: ClassVar[AgentSpec] = AgentSpec(
        name="infrastructure-incident-specialist",
        purpose="Hosts and pods (CPU, memory) and the network between services (delay seen in traces).",
        inputs=(),
        outputs=("diagnosis", "evidence"),
    )

    def run(self, ctx: AgentContext) -> AgentReport:
        diagnosis = investigate(ctx.bundle)
        infra = [c for c in diagnosis.candidates if c.fault_type in INFRA_FAULTS]
        findings = [
            f
            for f in diagnosis.findings.get("metrics", []) + diagnosis.findings.get("traces", [])
            if "cpu" in f.title or "memory" in f.title or "wire" in f.title
        ]
        if infra:
            best = infra[0]
            summary = f"{best.fault_type} on {best.service} (rank {best.rank} overall)"
        else:
            summary = "no host, pod or network saturation explains the incident"
        ids = {i for c in infra for i in c.evidence_ids}
        return AgentReport(
            agent=self.spec.name,
            summary=summary,
            findings=findings,
            candidates=diagnosis.candidates,
            outputs={"diagnosis": candidate_dicts(diagnosis), "evidence": evidence_dicts(diagnosis, ids or None)},
            limitations=[t for t in diagnosis.limitations if t.startswith(("metrics", "traces"))],
        )
