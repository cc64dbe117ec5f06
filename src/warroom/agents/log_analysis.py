"""log-analysis-specialist (alias error-detective): log templates, new and surging error templates,
timeline reconstruction, correlation with recent changes."""

from __future__ import annotations

from typing import Any, ClassVar

import polars as pl

from warroom.agents.base import AgentContext, AgentSpec, Specialist
from warroom.agents.investigation import investigate
from warroom.analysis import logs as logs_mod
from warroom.incident import AgentReport, Evidence, Finding


class LogAnalysisSpecialist(Specialist):
    spec: ClassVar[AgentSpec] = AgentSpec(
        name="log-analysis-specialist",
        purpose="Error patterns in the logs, a reconstructed timeline, and their correlation with changes.",
        inputs=(),
        outputs=("log_patterns", "log_timeline"),
        aliases=("error-detective",),
    )

    def run(self, ctx: AgentContext) -> AgentReport:
        telemetry = ctx.telemetry
        diagnosis = investigate(telemetry)
        findings: list[Finding] = diagnosis.findings("logs")
        patterns = [
            {"service": f.service, "title": f.title, "detail": f.detail, "confidence": f.confidence} for f in findings
        ]
        timeline: list[dict[str, Any]] = []
        window = telemetry.manifest.effective_window()
        if telemetry.logs is not None:
            errors = logs_mod.mine_templates(
                telemetry.logs.filter(pl.col("timestamp").is_between(window.start, window.end))
            ).filter(pl.col("severity") >= 2)
            first = (
                errors.group_by("service", "template")
                .agg(pl.col("timestamp").min().alias("first"), pl.len().alias("count"))
                .sort("first")
                .head(20)
            )
            timeline = [
                {"at": r["first"].isoformat(), "service": r["service"], "template": r["template"], "count": r["count"]}
                for r in first.iter_rows(named=True)
            ]
        if telemetry.changes is not None and timeline:
            first_error = min(pl.Series([t["at"] for t in timeline]).str.to_datetime(time_zone="UTC"))
            recent = telemetry.changes.filter(pl.col("time") <= first_error).sort("time", descending=True).head(3)
            for row in recent.iter_rows(named=True):
                gap_min = (first_error - row["time"]).total_seconds() / 60.0
                ev = Evidence(
                    id=f"change-{row['id']}",
                    source="changes",
                    query=f"change {row['id']} on {row['service']}",
                    start=row["time"],
                    end=first_error,
                    values={"minutes_before_first_error": round(gap_min, 1), "kind": row["kind"]},
                )
                findings.append(
                    Finding(
                        id=f"finding-change-{row['id']}",
                        title=f"{row['kind']} of {row['service']} {gap_min:.0f} min before the first new error",
                        confidence=0.5 if gap_min <= 60 else 0.2,
                        service=row["service"],
                        evidence=[ev],
                    )
                )
        summary = (
            f"{len(patterns)} changed log patterns; first new error at {timeline[0]['at']} in {timeline[0]['service']}"
            if timeline
            else f"{len(patterns)} changed log patterns; no error lines in the window"
        )
        return AgentReport(
            agent=self.spec.name,
            summary=summary,
            findings=findings,
            outputs={"log_patterns": patterns, "log_timeline": timeline},
            limitations=[t for t in diagnosis.limitations if t.startswith("logs")],
        )
