"""Administration (admin role): API tokens, the effective configuration, the API audit log."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request

from warroom.serve.api.deps import Service, service
from warroom.serve.api.schemas import AuditOut, TokenIn, TokenOut
from warroom.serve.auth import Principal, Role, requires
from warroom.serve.problems import ERROR_RESPONSES
from warroom.store import tokens

router = APIRouter(prefix="/api/v1", tags=["admin"], responses=ERROR_RESPONSES)
Admin = Annotated[Principal, Depends(requires(Role.ADMIN))]
Svc = Annotated[Service, Depends(service)]


def _out(info: tokens.TokenInfo, token: str | None = None) -> TokenOut:
    return TokenOut(
        name=info.name,
        role=info.role,
        created_at=info.created_at,
        created_by=info.created_by,
        revoked_at=info.revoked_at,
        token=token,
    )


@router.get("/tokens", response_model=list[TokenOut])
def list_tokens(_: Admin, svc: Svc) -> list[TokenOut]:
    return [_out(info) for info in tokens.list_tokens(svc.store)]


@router.post("/tokens", status_code=201, response_model=TokenOut)
def create_token(body: TokenIn, request: Request, who: Admin, svc: Svc) -> TokenOut:
    """A new token; its value is in this response only (the store keeps a digest)."""
    try:
        value = tokens.create_token(svc.store, body.name, body.role, created_by=who.name)
    except tokens.TokenExists as exc:
        raise HTTPException(409, exc.one_line()) from None
    info = next(t for t in tokens.list_tokens(svc.store) if t.name == body.name)
    request.state.audit_detail = {"token": body.name, "role": body.role}
    return _out(info, value)


@router.delete("/tokens/{name}", response_model=TokenOut)
def revoke_token(name: str, request: Request, _: Admin, svc: Svc) -> TokenOut:
    request.state.audit_detail = {"token": name}
    revoked = tokens.revoke_token(svc.store, name)
    svc.tokens.clear()  # committed: the revoked token fails at its next request
    return _out(revoked)


@router.get("/config")
def config(_: Admin, svc: Svc) -> dict[str, Any]:
    """The service's effective `[serve]` configuration (it holds no secrets: only variable names)."""
    return svc.config.model_dump(mode="json")


@router.get("/audit", response_model=list[AuditOut])
def audit(
    _: Admin,
    svc: Svc,
    incident_id: Annotated[str | None, Query(max_length=32)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> list[AuditOut]:
    """API writes, newest first: who, when, what, and the status they got."""
    return [
        AuditOut.model_validate(row, from_attributes=True)
        for row in tokens.audit_entries(svc.store, incident_id, limit)
    ]
