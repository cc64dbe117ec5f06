"""Every write to the API — accepted or refused — goes to the audit log with who, when and the
outcome, and is committed before the response starts, so no caller sees a 2xx that is not audited."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import anyio
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from warroom.store.repository import Store
from warroom.store.tokens import record_request

WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_INCIDENT = re.compile(r"/incidents/([^/]+)")


class AuditMiddleware:
    def __init__(self, app: ASGIApp, store: Store) -> None:
        self.app = app
        self.store = store

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in WRITES:
            await self.app(scope, receive, send)
            return

        async def audited_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                await anyio.to_thread.run_sync(self._record, scope, message["status"])
            await send(message)

        await self.app(scope, receive, audited_send)

    def _record(self, scope: Scope, status: int) -> None:
        state: dict[str, Any] = scope.get("state", {})
        principal = state.get("principal")
        path = scope["path"]
        found = _INCIDENT.search(path)
        client = scope.get("client")
        record_request(
            self.store,
            {
                "at": datetime.now(UTC),
                "actor": principal.name if principal else "anonymous",
                "role": principal.role.label if principal else None,
                "method": scope["method"],
                "path": path,
                "status_code": status,
                "client": client[0] if client else None,
                "incident_id": found.group(1) if found else None,
                "detail": state.get("audit_detail", {}),
            },
        )
