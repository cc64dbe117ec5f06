"""monitoring-specialist (alias performance-engineer): metric anomalies, onset and impact trend."""

from __future__ import annotations

from typing import ClassVar

from warroom.agents.base import AgentContext, AgentSpec, Specialist
from warroom.agents.investigation import investigate
from warroom.analysis.key_series import key_series, onsets_of
from warroom.incident import AgentReport


class MonitoringSpecialist(Specialist):
    spec: ClassVar[AgentSpec] = AgentSpec(
        name="monitoring-specialist",
        purpose="Metric anomalies against the baseline, their onset and the impact trend.",
        inputs=(),
        outputs=("metric_anomalies", "key_series"),
        aliases=("performance-engineer",),
    )

    def run(self, ctx: AgentContext) -> AgentReport:
        diagnosis = investigate(ctx.telemetry)
        found = diagnosis.findings("metrics") + [f for f in diagnosis.findings("traces") if f.kind == "bottleneck"]
        anomalies = [
            {
                "service": f.service,
                "title": f.title,
                "confidence": f.confidence,
                "onset": f.evidence[0].values.get("onset") if f.evidence else None,
                "z": f.evidence[0].values.get("strength_z") if f.evidence else None,
            }
            for f in found
        ]
        onsets = sorted(str(a["onset"]) for a in anomalies if a.get("onset"))
        summary = (
            f"{len(found)} metric/latency anomalies above their noise level"
            + (f"; earliest onset {onsets[0]}" if onsets else "")
            if found
            else "no metric or latency series deviates above its noise level"
        )
        limits = [text for text in diagnosis.limitations if text.startswith(("metrics", "traces"))]
        return AgentReport(
            agent=self.spec.name,
            summary=summary,
            findings=found,
            outputs={
                "metric_anomalies": anomalies,
                # drawn by the incident room while the run waits at an approval (the documentation
                # draws them again at the end, with the data after the action)
                "key_series": key_series(ctx.telemetry, ctx.context, onsets_of(ctx.telemetry, ctx.context)),
            },
            limitations=limits,
        )
