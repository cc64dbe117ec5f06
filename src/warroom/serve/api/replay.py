"""Replay: fire the replayed bundle's own alert through the intake, as Alertmanager would."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request

from warroom.serve.api.alerts import take
from warroom.serve.api.deps import Service, service
from warroom.serve.api.schemas import IntakeOut
from warroom.serve.auth import Principal, Role, requires
from warroom.serve.payloads import ReceivedAlert, label_fingerprint
from warroom.serve.problems import ERROR_RESPONSES
from warroom.sources.bundle import BundleSource
from warroom.sources.manifest import Manifest

router = APIRouter(prefix="/api/v1/replay", tags=["replay"], responses=ERROR_RESPONSES)


def bundle_alert(manifest: Manifest) -> ReceivedAlert:
    alert = manifest.alert
    labels = {"alertname": alert.name, **({"service": alert.service} if alert.service else {}), **alert.labels}
    return ReceivedAlert(
        fingerprint=label_fingerprint(labels),
        status="firing",
        labels=labels,
        annotations={"summary": alert.summary} if alert.summary else {},
        starts_at=alert.fired_at,
        ends_at=None,
        group_key=None,
        source="replay",
    )


@router.post("/alert", status_code=202, response_model=IntakeOut)
def fire(
    request: Request,
    _: Annotated[Principal, Depends(requires(Role.RESPONDER))],
    svc: Annotated[Service, Depends(service)],
) -> IntakeOut:
    """Send the replayed bundle's alert (from its incident.yaml) through the intake."""
    if not svc.config.replay:
        raise HTTPException(404, "the service is not replaying a bundle (start it with --replay BUNDLE)")
    manifest = BundleSource(svc.config.replay).manifest()
    return take(request, svc, [bundle_alert(manifest)])
