"""Stakeholder messages and their delivery records."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Literal

from pydantic import BaseModel, Field

from warroom.incident import TimelineEvent, TimelineKind
from warroom.redact import redact

Audience = Literal["internal", "executive", "customer"]
AUDIENCES: tuple[Audience, ...] = ("internal", "executive", "customer")


class Message(BaseModel):
    id: str
    incident_id: str
    audience: Audience
    severity: str
    subject: str
    body: str  # Markdown-flavoured plain text
    created_at: datetime = Field(default_factory=lambda: datetime.now(UTC))
    next_update_at: datetime | None = None
    facts: dict[str, str] = Field(default_factory=dict)  # short key facts for channels with fields (Slack)

    def redacted(self) -> Message:
        return self.model_copy(
            update={
                "subject": redact(self.subject),
                "body": redact(self.body),
                "facts": {k: redact(v) for k, v in self.facts.items()},
            }
        )


DeliveryStatus = Literal["delivered", "failed", "skipped"]


class Delivery(BaseModel):
    """What became of one message on one channel."""

    message_id: str
    audience: Audience
    channel: str
    channel_type: str
    status: DeliveryStatus
    attempts: int = 0
    detail: str = ""
    at: datetime = Field(default_factory=lambda: datetime.now(UTC))


def updates_sent(events: Iterable[TimelineEvent]) -> int:
    """How many updates the `communication_sent` events record (one per sequence number, whoever
    sent it: the workflow's specialist or the service's cadence keeper), so the next one is numbered
    after every update the incident already had."""
    return len(
        {
            str(e.data.get("sequence", e.data.get("message_id", e.summary)))
            for e in events
            if e.kind is TimelineKind.COMMUNICATION_SENT
        }
    )
