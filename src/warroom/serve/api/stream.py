"""Live timeline: Server-Sent Events of an incident's new timeline events.

The stream reads the store (by sequence number), not an in-process bus, so it shows what any
writer committed — the background run, another request, a process restarted after a crash."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

import anyio
from fastapi import APIRouter, Depends, Header, Query
from sse_starlette import EventSourceResponse, ServerSentEvent

from warroom.redact import redact_obj
from warroom.serve.api.deps import Service, service
from warroom.serve.api.incidents import MAX_SEQ
from warroom.serve.auth import Principal, Role, requires
from warroom.serve.problems import ERROR_RESPONSES

router = APIRouter(prefix="/api/v1/incidents", tags=["timeline"], responses=ERROR_RESPONSES)
POLL_S = 0.5
PING_S = 15


async def _events(svc: Service, incident_id: str, after: int) -> AsyncIterator[ServerSentEvent]:
    last = after
    while True:
        events = await anyio.to_thread.run_sync(svc.store.events_after, incident_id, last)
        for event in events:
            last = event.seq or last
            yield ServerSentEvent(data=redact_obj(event.model_dump_json()), event="timeline", id=str(last))
        await anyio.sleep(POLL_S)


@router.get(
    "/{incident_id}/timeline/stream",
    response_class=EventSourceResponse,
    responses={200: {"content": {"text/event-stream": {}}, "description": "timeline events as they are recorded"}},
)
def stream(
    incident_id: str,
    _: Annotated[Principal, Depends(requires(Role.VIEWER))],
    svc: Annotated[Service, Depends(service)],
    after: Annotated[int, Query(ge=0, le=MAX_SEQ, description="start after this event seq")] = 0,
    last_event_id: Annotated[int | None, Header(ge=0, le=MAX_SEQ)] = None,
) -> EventSourceResponse:
    """Each new timeline event as an SSE `timeline` event (id = its seq; reconnects resume)."""
    svc.store.get_incident(incident_id)
    return EventSourceResponse(_events(svc, incident_id, max(after, last_event_id or 0)), ping=PING_S)
