"""incident-communications-specialist: stakeholder updates at the cadence the severity sets.

Builds one update per audience (internal, executive, customer status page) from the context keys
incident / diagnosis / impact / mitigation / recovery, delivers them through the channels of
`warroom.toml` (or a file channel in the run's output directory, `ctx.params["out_dir"]`), and
outputs `communications`: every message with its audience, channel, delivery status and the time
of the next update. A channel that is down is retried and recorded; it never fails the step.

Parameters: out_dir, config (path of warroom.toml), now (ISO time of this update; default: the end
of the bundle's incident window), audiences (default: the bundle's comms.audiences).
"""

from __future__ import annotations

from datetime import UTC
from typing import ClassVar

from warroom.agents.base import AgentContext, AgentSpec, Specialist
from warroom.agents.outputs import INCIDENT
from warroom.comms.message import AUDIENCES, Audience
from warroom.comms.updates import send_update
from warroom.config import load_config
from warroom.incident import AgentReport
from warroom.values import parse_time as _time


class IncidentCommunicationsSpecialist(Specialist):
    spec: ClassVar[AgentSpec] = AgentSpec(
        name="incident-communications-specialist",
        purpose="Keep stakeholders informed: internal, executive and customer status-page updates at the "
        "cadence the severity sets, each with what is known, impact, next steps and the next update time.",
        inputs=("incident", "diagnosis", "impact", "mitigation", "recovery"),
        outputs=("communications",),
        aliases=("communications-lead", "stakeholder-communications"),
    )

    def run(self, ctx: AgentContext) -> AgentReport:
        manifest = ctx.telemetry.manifest
        incident = ctx.read(INCIDENT)
        severity = (incident.severity if incident else None) or "P2"
        config = load_config(ctx.params.get("config"))
        previous = [c for c in ctx.context.get("communications") or [] if isinstance(c, dict)]
        sent_times = [t for t in (_time(c.get("created_at")) for c in previous) if t is not None]
        # The time of this update: given by the engine, else the end of the incident's window (for a
        # recorded incident that is where the telemetry ends; for a live one it is about now).
        now = _time(ctx.params.get("now")) or manifest.effective_window().end.astimezone(UTC)
        audiences: list[Audience] = [
            a for a in (ctx.params.get("audiences") or manifest.comms.audiences) if a in AUDIENCES
        ]
        # numbered after every update the incident had: this run's, and the service's cadence
        # updates between its phases (which the engine counts from the timeline)
        own = len({c.get("sequence") for c in previous if c.get("sequence") is not None})
        sequence = max(own, int(ctx.params.get("updates_sent") or 0)) + 1
        update = send_update(
            ctx.context,
            incident_id=ctx.incident_id,
            severity=severity,
            now=now,
            comms=config.comms,
            sequence=sequence,
            audiences=audiences,
            out_dir=ctx.params.get("out_dir"),
            # the commander's assessment holds no cadence of its own: the incident declaration's is the one
            incident_cadence=manifest.comms.cadence_minutes,
            sender=self.spec.name,
        )
        cadence, entries, failed = update.cadence, update.entries, update.failed
        summary = (
            f"update {sequence} to {', '.join(audiences)}: {len(entries) - len(failed)} of {len(entries)} "
            f"deliveries succeeded; next update at {cadence.next_update_at.strftime('%H:%M UTC')} "
            f"(every {cadence.interval_minutes:g} min at {severity})"
        )
        if sent_times:
            gap = (now - max(sent_times)).total_seconds() / 60
            summary += f"; {gap:.0f} min since the previous update"
        return AgentReport(
            agent=self.spec.name,
            summary=summary,
            findings=update.findings,
            outputs={"communications": [*previous, *entries]},
            timeline=update.timeline,
            limitations=update.limitations,
        )
