"""Alert intake: Alertmanager's webhook (v4) and generic JSON alerts."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from sqlalchemy.orm import Session

from warroom.serve.api.deps import Service, service
from warroom.serve.api.schemas import AlertOutcomeOut, IntakeOut
from warroom.serve.audit import entry_of
from warroom.serve.auth import Principal, Role, requires
from warroom.serve.intake import IntakeResult, accept
from warroom.serve.payloads import AlertmanagerWebhook, GenericAlerts, ReceivedAlert
from warroom.serve.problems import ERROR_RESPONSES
from warroom.store.tokens import record_request

router = APIRouter(prefix="/api/v1/alerts", tags=["alerts"], responses=ERROR_RESPONSES)
Responder = Annotated[Principal, Depends(requires(Role.RESPONDER))]


async def take(request: Request, svc: Service, received: list[ReceivedAlert]) -> IntakeOut:
    # Stored in the writer's next group commit; awaited, so the 202 follows the COMMIT.
    started = time.perf_counter()

    def work(session: Session) -> IntakeResult:
        result = accept(session, svc.store, svc.router, svc.settings, received)
        # The request's audit entry commits with its alerts (one commit, not two, per batch).
        request.state.audit_detail = {"alerts": len(received), "incidents": result.incident_ids}
        record_request(session, entry_of(request.scope, 202))
        return result

    result = await svc.committer.run(work)
    request.state.audited = True
    for run_id in result.runs:  # committed above: a crash from here on is recovered at restart
        svc.executor.submit(run_id)
    svc.metrics.taken(result, time.perf_counter() - started)
    return IntakeOut(
        incidents=result.incident_ids,
        alerts=[AlertOutcomeOut(**vars(a)) for a in result.alerts],
        runs_queued=len(result.runs),
    )


@router.post("/alertmanager", status_code=202, response_model=IntakeOut)
async def alertmanager(
    body: AlertmanagerWebhook, request: Request, _: Responder, svc: Annotated[Service, Depends(service)]
) -> IntakeOut:
    """Alertmanager webhook receiver (payload version 4). Stored before the 202 is sent."""
    return await take(request, svc, body.received(await request.body()))  # the body FastAPI read, cached


@router.post("", status_code=202, response_model=IntakeOut)
async def generic(
    body: GenericAlerts, request: Request, _: Responder, svc: Annotated[Service, Depends(service)]
) -> IntakeOut:
    """Alerts from anything else, as plain JSON. Stored before the 202 is sent."""
    now = datetime.now(UTC)
    return await take(request, svc, [a.received(now) for a in body.alerts])
