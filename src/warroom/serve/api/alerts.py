"""Alert intake: Alertmanager's webhook (v4) and generic JSON alerts."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request
from pydantic import ValidationError
from sqlalchemy.orm import Session
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from warroom.serve.api.deps import Service, service
from warroom.serve.api.schemas import AlertOutcomeOut, IntakeOut
from warroom.serve.audit import entry_of
from warroom.serve.auth import Principal, Role, authenticate, requires
from warroom.serve.committer import Ahead
from warroom.serve.intake import IntakeResult, accept
from warroom.serve.payloads import AlertmanagerWebhook, GenericAlerts, ReceivedAlert
from warroom.serve.problems import ERROR_RESPONSES
from warroom.store import alerts as alert_store
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

    # every alert's stored occurrence is looked up with the batch's others, in one statement
    occurrences = [(alert.fingerprint, alert.starts_at) for alert in received]
    result = await svc.committer.run(work, Ahead(alert_store.look_up_occurrences, occurrences))
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


ALERTMANAGER_PATH = f"{router.prefix}/alertmanager"


class AlertmanagerFastPath:
    """The Alertmanager intake's common case without the framework's per-request machinery
    (routing, dependency solving, body and response conversion: about half of a request's cost
    in a storm). A POST to the route above, with JSON that validates as `AlertmanagerWebhook` and
    a token of at least the responder role, is taken here by the same `take` (stored, audited and
    committed before the 202, the same body); anything else — no or a bad token, a role too low,
    a body that does not validate — goes on to the route, whose answer (401, 403, 422 as problem
    details) and audit are the API's. The route is also what the OpenAPI document describes."""

    def __init__(self, app: ASGIApp, svc: Service) -> None:
        self.app = app
        self.svc = svc

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or scope["path"] != ALERTMANAGER_PATH:
            await self.app(scope, receive, send)
            return
        body, more = b"", True
        while more:  # the whole body (the server's body limit is enforced outside this)
            message = await receive()
            if message["type"] != "http.request":
                await self.app(scope, receive, send)  # the client went away: the route sees it
                return
            body += message.get("body", b"")
            more = message.get("more_body", False)
        sent = False

        async def replay() -> Message:  # the route reads the same body
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        request = Request(scope, replay)
        webhook = self._accepted(request, body)
        if webhook is None:
            await self.app(scope, replay, send)
            return
        out = await take(request, self.svc, webhook.received(body))
        payload = out.model_dump_json().encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]
        await send({"type": "http.response.start", "status": 202, "headers": headers})
        await send({"type": "http.response.body", "body": payload})

    def _accepted(self, request: Request, body: bytes) -> AlertmanagerWebhook | None:
        """The webhook, if this request is one the fast path takes (else None: the route answers)."""
        if "json" not in request.headers.get("content-type", ""):
            return None
        try:
            principal = authenticate(request, self.svc.tokens, self.svc.config.auth)
        except HTTPException:
            return None
        if principal.role < Role.RESPONDER:
            return None
        try:
            webhook = AlertmanagerWebhook.model_validate_json(body)
        except ValidationError:
            return None
        request.state.principal = principal  # the audit entry names who sent it
        return webhook
