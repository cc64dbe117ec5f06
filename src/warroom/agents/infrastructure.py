"""infrastructure-incident-specialist: host and pod CPU/memory saturation, the network between
services, third-party dependencies and certificates — within the fused diagnosis."""

from __future__ import annotations

from typing import ClassVar

from warroom.agents.base import AgentContext, AgentSpec
from warroom.agents.fusion import fuse, outputs, root_cause_finding
from warroom.incident import AgentReport

INFRA_FAULTS = (
    "cpu_saturation",
    "memory_leak",
    "network_delay",
    "slow_dependency",
    "certificate_expiry",
    "cpu_contention",
    "cpu_consumption",
    "memory",
)


class InfrastructureIncidentSpecialist:
    spec: ClassVar[AgentSpec] = AgentSpec(
        name="infrastructure-incident-specialist",
        purpose="Hosts and pods (CPU, memory), the network between services (delay seen in traces), "
        "third-party dependencies and certificates.",
        inputs=(),
        outputs=("diagnosis", "evidence", "suspect_service", "suspect_change", "change_ranking"),
    )

    def run(self, ctx: AgentContext) -> AgentReport:
        fused = fuse(ctx)
        values, change, _ = outputs(ctx, fused)
        infra = [c for c in fused.candidates if c.fault_type in INFRA_FAULTS]
        findings = [f for f in [root_cause_finding(fused, change)] if f is not None]
        top = fused.top()
        if infra:
            best = infra[0]
            summary = f"{best.fault_type} on {best.service} (rank {best.rank} overall)"
            if top is not None and top is not best:
                summary += f"; the top candidate is {top.fault_type} on {top.service}"
        elif top is not None:
            summary = (
                f"no host, pod, network or third-party fault explains the incident; top candidate "
                f"{top.fault_type} on {top.service}"
            )
        else:
            summary = "no host, pod, network or third-party fault explains the incident"
        return AgentReport(
            agent=self.spec.name,
            summary=summary,
            findings=findings,
            candidates=fused.candidates,
            outputs=values,
            limitations=list(fused.limitations),
        )
