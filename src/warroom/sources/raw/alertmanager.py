"""Alertmanager's webhook payload (version 4): the alert that opened the incident, as it was sent."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

from pydantic import BaseModel, Field, ValidationError

from warroom.errors import BundleError
from warroom.sources.manifest import Alert
from warroom.sources.raw.labels import service_of
from warroom.sources.raw.reader import RawRead, ReadOptions


class WebhookAlert(BaseModel):
    status: str
    labels: dict[str, str]
    annotations: dict[str, str] = Field(default_factory=dict)
    startsAt: datetime
    endsAt: datetime | None = None
    generatorURL: str = ""
    fingerprint: str = ""


class WebhookPayload(BaseModel):
    """https://prometheus.io/docs/alerting/latest/configuration/#webhook_config"""

    version: str
    groupKey: str
    truncatedAlerts: int = 0
    status: str
    receiver: str = ""
    groupLabels: dict[str, str] = Field(default_factory=dict)
    commonLabels: dict[str, str] = Field(default_factory=dict)
    commonAnnotations: dict[str, str] = Field(default_factory=dict)
    externalURL: str = ""
    alerts: list[WebhookAlert]


def as_alert(item: WebhookAlert, service_label: str | None = None) -> Alert:
    """One webhook alert as the incident's alert (its labels, its summary, when it started)."""
    summary = item.annotations.get("summary") or item.annotations.get("description") or ""
    return Alert(
        name=item.labels.get("alertname", "alert"),
        fired_at=item.startsAt,
        service=service_of(item.labels, service_label),
        summary=summary,
        labels={
            **item.labels,
            "source": "alertmanager",
            **({"fingerprint": item.fingerprint} if item.fingerprint else {}),
        },
    )


def parse_payload(text: str, path: Path) -> WebhookPayload:
    try:
        return WebhookPayload.model_validate_json(text)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise BundleError(f"not an Alertmanager webhook payload: {first['msg']}", file=path, field=where) from None


class AlertmanagerPayload:
    name = "Alertmanager webhook payload (version 4)"

    def sniff(self, path: Path, head: bytes) -> bool:
        text = head.lstrip()
        return text.startswith(b"{") and b'"alerts"' in head and b'"groupKey"' in head

    def read(self, path: Path, options: ReadOptions) -> RawRead:
        try:
            text = path.read_text(encoding="utf-8")
            json.loads(text)
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise BundleError(f"cannot read as JSON ({exc.__class__.__name__})", file=path) from None
        payload = parse_payload(text, path)
        firing = [a for a in payload.alerts if a.status == "firing"]
        alerts = [as_alert(a, options.service_label) for a in firing or payload.alerts]
        notes = [f"{len(payload.alerts)} alert(s) in group {payload.groupKey} ({len(firing)} firing)"]
        limitations = []
        if payload.truncatedAlerts:
            limitations.append(f"{path.name}: Alertmanager left out {payload.truncatedAlerts} alert(s) of the group")
        return RawRead(alerts=alerts, notes=notes, limitations=limitations)
