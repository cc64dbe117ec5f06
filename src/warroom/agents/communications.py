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
from typing import Any, ClassVar

from warroom.agents.base import AgentContext, AgentSpec
from warroom.comms.cadence import next_update
from warroom.comms.channels import Channel, FileChannel, deliver
from warroom.comms.compose import build_updates
from warroom.comms.config import build_channels
from warroom.comms.message import AUDIENCES, Audience, Delivery
from warroom.config import load_config
from warroom.incident import AgentReport, Evidence, Finding, TimelineEvent, TimelineKind
from warroom.values import parse_time as _time


class IncidentCommunicationsSpecialist:
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
        incident = ctx.context.get("incident") if isinstance(ctx.context.get("incident"), dict) else {}
        assert isinstance(incident, dict)
        severity = str(incident.get("severity") or "P2")
        config = load_config(ctx.params.get("config"))
        previous = [c for c in ctx.context.get("communications") or [] if isinstance(c, dict)]
        sent_times = [t for t in (_time(c.get("created_at")) for c in previous) if t is not None]
        # The time of this update: given by the engine, else the end of the incident's window (for a
        # recorded incident that is where the telemetry ends; for a live one it is about now).
        now = _time(ctx.params.get("now")) or manifest.effective_window().end.astimezone(UTC)
        cadence = next_update(
            severity,
            now,
            last_update_at=None,  # this update is being sent now; the next one is an interval away
            overrides=config.comms.cadence_minutes,
            incident_cadence=incident.get("comms_cadence_minutes") or manifest.comms.cadence_minutes,
        )
        audiences: list[Audience] = [
            a for a in (ctx.params.get("audiences") or manifest.comms.audiences) if a in AUDIENCES
        ]
        sequence = len({c.get("sequence") for c in previous if c.get("sequence") is not None}) + 1
        messages = build_updates(
            ctx.context, incident_id=ctx.incident_id, audiences=audiences, cadence=cadence, now=now, sequence=sequence
        )
        out_dir = ctx.params.get("out_dir")
        channels: list[Channel] = build_channels(config.comms.channels, out_dir)
        limitations: list[str] = []
        if not channels:
            if out_dir:
                channels = [FileChannel(out_dir, "file")]
            else:
                limitations.append("no channel configured and no output directory: updates composed, not sent")
        entries: list[dict[str, Any]] = []
        findings: list[Finding] = []
        for message in messages:
            deliveries = deliver(
                message, channels, attempts=config.comms.retries + 1, backoff_s=config.comms.backoff_s
            ) or [
                Delivery(
                    message_id=message.id,
                    audience=message.audience,
                    channel="none",
                    channel_type="none",
                    status="skipped",
                    detail="no channel takes this audience",
                )
            ]
            for delivery in deliveries:
                entries.append(
                    {
                        "id": message.id,
                        "sequence": sequence,
                        "audience": message.audience,
                        "subject": message.subject,
                        "body": message.body,
                        "created_at": message.created_at.isoformat(),
                        "next_update_at": cadence.next_update_at.isoformat(),
                        "interval_minutes": cadence.interval_minutes,
                        "channel": delivery.channel,
                        "channel_type": delivery.channel_type,
                        "status": delivery.status,
                        "attempts": delivery.attempts,
                        "detail": delivery.detail,
                    }
                )
            delivered = [d for d in deliveries if d.status == "delivered"]
            findings.append(
                Finding(
                    title=f"{message.audience} update {'sent' if delivered else 'not delivered'}: {message.subject}",
                    detail="; ".join(f"{d.channel}: {d.status} ({d.detail})" for d in deliveries),
                    confidence=1.0,
                    kind="communication",
                    evidence=[
                        Evidence(
                            source="comms",
                            query=f"deliveries of {message.id}",
                            start=message.created_at,
                            end=message.created_at,
                            values={d.channel: d.status for d in deliveries},
                            samples=[message.subject],
                        )
                    ],
                )
            )
        timeline = [
            TimelineEvent(
                at=now,
                kind=TimelineKind.COMMUNICATION_SENT,
                source=self.spec.name,
                summary=f"{e['audience']} update {e['sequence']} via {e['channel']} ({e['channel_type']}): "
                f"{e['status']} — {e['subject']}",
                data={
                    "message_id": e["id"],
                    "audience": e["audience"],
                    "channel": e["channel"],
                    "channel_type": e["channel_type"],
                    "status": e["status"],
                    "attempts": e["attempts"],
                    "detail": e["detail"],
                    "next_update_at": e["next_update_at"],
                },
            )
            for e in entries
        ]
        failed = [e for e in entries if e["status"] == "failed"]
        for entry in failed:
            limitations.append(f"{entry['audience']} update not delivered on {entry['channel']}: {entry['detail']}")
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
            findings=findings,
            outputs={"communications": [*previous, *entries]},
            timeline=timeline,
            limitations=limitations,
        )
