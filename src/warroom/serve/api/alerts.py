"""Alert intake: Alertmanager's webhook (v4) and generic JSON alerts."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Request

from warroom.serve.api.deps import Service, service
from warroom.serve.api.schemas import AlertOutcomeOut, IntakeOut
from warroom.serve.auth import Principal, Role, requires
from warroom.serve.intake import IntakeResult, accept
from warroom.serve.payloads import AlertmanagerWebhook, GenericAlerts, ReceivedAlert
from warroom.serve.problems import ERROR_RESPONSES

router = APIRouter(prefix="/api/v1/alerts", tags=["alerts"], responses=ERROR_RESPONSES)
Responder = Annotated[Principal, Depends(requires(Role.RESPONDER))]


def take(request: Request, svc: Service, received: list[ReceivedAlert]) -> IntakeOut:
    result: IntakeResult = accept(svc.store, svc.router, svc.settings, received)
    for run_id in result.runs:  # committed above: a crash from here on is recovered at restart
        svc.executor.submit(run_id)
    request.state.audit_detail = {"alerts": len(received), "incidents": result.incident_ids}
    return IntakeOut(
        incidents=result.incident_ids,
        alerts=[AlertOutcomeOut(**vars(a)) for a in result.alerts],
        runs_queued=len(result.runs),
    )


@router.post("/alertmanager", status_code=202, response_model=IntakeOut)
def alertmanager(
    body: AlertmanagerWebhook, request: Request, _: Responder, svc: Annotated[Service, Depends(service)]
) -> IntakeOut:
    """Alertmanager webhook receiver (payload version 4). Stored before the 202 is sent."""
    return take(request, svc, body.received())


@router.post("", status_code=202, response_model=IntakeOut)
def generic(
    body: GenericAlerts, request: Request, _: Responder, svc: Annotated[Service, Depends(service)]
) -> IntakeOut:
    """Alerts from anything else, as plain JSON. Stored before the 202 is sent."""
    now = datetime.now(UTC)
    return take(request, svc, [a.received(now) for a in body.alerts])
