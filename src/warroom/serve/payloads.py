"""What alerting sends: Alertmanager's webhook (version 4) and a generic JSON alert, both read
into one typed `ReceivedAlert`."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

# Alertmanager sends this for "no end time yet" on a firing alert.
ZERO_TIME_YEAR = 1


class ReceivedAlert(BaseModel):
    """One alert as the service stores it, whatever sent it."""

    fingerprint: str
    status: str  # firing | resolved
    labels: dict[str, str]
    annotations: dict[str, str]
    starts_at: datetime
    ends_at: datetime | None
    group_key: str | None  # None: the route's group labels decide
    source: str
    # The Alertmanager notification that carried it, as received (a live incident's run reads it
    # as its alert file); None for alerts from elsewhere.
    notification: bytes | None = Field(default=None, exclude=True, repr=False)


def _no_zero_time(value: datetime | None) -> datetime | None:
    return None if value is None or value.year <= ZERO_TIME_YEAR else value


class AmAlert(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    status: str = Field(pattern="^(firing|resolved)$")
    labels: dict[str, str] = Field(min_length=1)
    annotations: dict[str, str] = Field(default_factory=dict)
    starts_at: AwareDatetime = Field(alias="startsAt")
    ends_at: AwareDatetime | None = Field(default=None, alias="endsAt")
    generator_url: str = Field(default="", alias="generatorURL")
    fingerprint: str = Field(default="", max_length=128)


class AlertmanagerWebhook(BaseModel):
    """Alertmanager's webhook body, version 4."""

    model_config = ConfigDict(populate_by_name=True)

    version: str = Field(pattern="^4$")
    group_key: str = Field(alias="groupKey", min_length=1)
    truncated_alerts: int = Field(default=0, ge=0, alias="truncatedAlerts")
    status: str = Field(pattern="^(firing|resolved)$")
    receiver: str = ""
    group_labels: dict[str, str] = Field(default_factory=dict, alias="groupLabels")
    common_labels: dict[str, str] = Field(default_factory=dict, alias="commonLabels")
    common_annotations: dict[str, str] = Field(default_factory=dict, alias="commonAnnotations")
    external_url: str = Field(default="", alias="externalURL")
    alerts: list[AmAlert] = Field(min_length=1, max_length=10_000)

    def received(self, notification: bytes | None = None) -> list[ReceivedAlert]:
        return [
            ReceivedAlert(
                fingerprint=a.fingerprint or label_fingerprint(a.labels),
                status=a.status,
                labels=a.labels,
                annotations=a.annotations,
                starts_at=a.starts_at.astimezone(UTC),
                ends_at=_no_zero_time(a.ends_at.astimezone(UTC) if a.ends_at else None),
                group_key=self.group_key,
                source="alertmanager",
                notification=notification,
            )
            for a in self.alerts
        ]


class GenericAlert(BaseModel):
    """A plain JSON alert from anything that is not Alertmanager (a script, another alerting tool)."""

    name: str = Field(min_length=1, max_length=200)
    status: str = Field(default="firing", pattern="^(firing|resolved)$")
    service: str | None = None
    severity: str | None = None
    summary: str = ""
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)
    starts_at: AwareDatetime | None = None
    ends_at: AwareDatetime | None = None
    fingerprint: str | None = Field(default=None, max_length=128)
    group_key: str | None = Field(default=None, max_length=2000)

    def received(self, now: datetime) -> ReceivedAlert:
        labels = {"alertname": self.name, **self.labels}
        if self.service:
            labels["service"] = self.service
        if self.severity:
            labels["severity"] = self.severity
        annotations = dict(self.annotations)
        if self.summary:
            annotations["summary"] = self.summary
        return ReceivedAlert(
            fingerprint=self.fingerprint or label_fingerprint(labels),
            status=self.status,
            labels=labels,
            annotations=annotations,
            starts_at=(self.starts_at or now).astimezone(UTC),
            ends_at=self.ends_at.astimezone(UTC) if self.ends_at else None,
            group_key=self.group_key,
            source="generic",
        )


class GenericAlerts(BaseModel):
    alerts: list[GenericAlert] = Field(min_length=1, max_length=10_000)


def label_fingerprint(labels: dict[str, str]) -> str:
    """A stable identity of an alert from its label set (what Alertmanager's fingerprint is)."""
    text = json.dumps(labels, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def notification_of(alert: ReceivedAlert) -> bytes:
    """An alert from elsewhere (the generic endpoint, a replay) as the Alertmanager notification
    (version 4) that would have carried it: the shape the live sources read an alert file in."""
    body = {
        "version": "4",
        "groupKey": alert.group_key or f"warroom:{alert.fingerprint}",
        "truncatedAlerts": 0,
        "status": alert.status,
        "receiver": "warroom",
        "groupLabels": {},
        "commonLabels": alert.labels,
        "commonAnnotations": alert.annotations,
        "externalURL": "",
        "alerts": [
            {
                "status": alert.status,
                "labels": alert.labels,
                "annotations": alert.annotations,
                "startsAt": alert.starts_at.isoformat(),
                "endsAt": alert.ends_at.isoformat() if alert.ends_at else "0001-01-01T00:00:00Z",
                "fingerprint": alert.fingerprint,
            }
        ],
    }
    return json.dumps(body, indent=2).encode("utf-8")
