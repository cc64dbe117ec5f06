"""One stakeholder update: composed for each audience from the incident's context, delivered
through the configured channels (retried; a channel that is down is recorded, never raised), and
described as comms-log entries, findings and timeline events. The communications specialist sends
one at each phase of a workflow; `warroom serve` sends them on the severity's cadence between."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from warroom.comms.cadence import Cadence, next_update
from warroom.comms.channels import Channel, FileChannel, deliver
from warroom.comms.compose import build_updates
from warroom.comms.config import CommsConfig, build_channels
from warroom.comms.message import Audience, Delivery
from warroom.incident import Evidence, Finding, TimelineEvent, TimelineKind


@dataclass
class Update:
    sequence: int
    cadence: Cadence
    entries: list[dict[str, Any]]  # one per delivery: the comms log's rows
    findings: list[Finding]
    timeline: list[TimelineEvent]
    limitations: list[str]

    @property
    def failed(self) -> list[dict[str, Any]]:
        return [e for e in self.entries if e["status"] == "failed"]


def send_update(
    context: Mapping[str, Any],
    *,
    incident_id: str,
    severity: str,
    now: datetime,
    comms: CommsConfig,
    sequence: int,
    audiences: Sequence[Audience],
    out_dir: str | Path | None,
    incident_cadence: float | None,
    sender: str,
    actions: Sequence[TimelineEvent] = (),
) -> Update:
    """Update number `sequence` of the incident, sent at `now` (incident time); `actions`, the
    timeline's action events, say what was executed while the executor's step is under way."""
    cadence = next_update(
        severity,
        now,
        last_update_at=None,  # this update is being sent now; the next one is an interval away
        overrides=comms.cadence_minutes,
        incident_cadence=incident_cadence,
    )
    messages = build_updates(
        context,
        incident_id=incident_id,
        audiences=audiences,
        cadence=cadence,
        now=now,
        sequence=sequence,
        actions=actions,
    )
    channels: list[Channel] = build_channels(comms.channels, out_dir)
    limitations: list[str] = []
    if not channels:
        if out_dir:
            channels = [FileChannel(out_dir, "file")]
        else:
            limitations.append("no channel configured and no output directory: updates composed, not sent")
    entries: list[dict[str, Any]] = []
    findings: list[Finding] = []
    for message in messages:
        deliveries = deliver(message, channels, attempts=comms.retries + 1, backoff_s=comms.backoff_s) or [
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
            source=sender,
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
                "sequence": e["sequence"],
            },
        )
        for e in entries
    ]
    failed = [e for e in entries if e["status"] == "failed"]
    for entry in failed:
        limitations.append(f"{entry['audience']} update not delivered on {entry['channel']}: {entry['detail']}")
    failed = [e for e in entries if e["status"] == "failed"]
    for entry in failed:
        limitations.append(f"{entry['audience']} update not delivered on {entry['channel']}: {entry['detail']}")
    return Update(sequence, cadence, entries, findings, timeline, limitations)
