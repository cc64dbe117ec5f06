"""Actions: list, propose (responder), approve and reject (commander for risky ones)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request

from warroom.incident import RecommendedAction, RiskLevel, TimelineEvent, TimelineKind
from warroom.serve.api.deps import Service, service
from warroom.serve.api.schemas import ActionOut, DecisionOut, ProposalIn, RejectIn
from warroom.serve.auth import Principal, Role, requires
from warroom.serve.clock import incident_now
from warroom.serve.problems import ERROR_RESPONSES
from warroom.store.models import ActionRow
from warroom.workflow.engine import Engine

router = APIRouter(prefix="/api/v1/incidents/{incident_id}/actions", tags=["actions"], responses=ERROR_RESPONSES)
Viewer = Annotated[Principal, Depends(requires(Role.VIEWER))]
Responder = Annotated[Principal, Depends(requires(Role.RESPONDER))]
Svc = Annotated[Service, Depends(service)]


def needed_role(row: ActionRow) -> Role:
    """Who decides an action: a commander for medium and high risk, a responder for low risk."""
    return Role.RESPONDER if row.data.get("risk") == RiskLevel.LOW.value else Role.COMMANDER


def _out(row: ActionRow) -> ActionOut:
    data = row.data
    return ActionOut(
        action_id=row.action_id,
        title=str(data.get("title", row.action_id)),
        kind=str(data.get("kind", "unknown")),
        target=data.get("target"),
        risk=RiskLevel(data.get("risk", RiskLevel.MEDIUM.value)),
        status=row.status,
        approved_by=row.approved_by,
        approved_at=row.approved_at,
        rationale=str(data.get("rationale", "")),
        needs_role=needed_role(row).label,
    )


def _action(svc: Service, incident_id: str, action_id: str) -> ActionRow:
    svc.store.get_incident(incident_id)
    for row in svc.store.actions(incident_id):
        if row.action_id == action_id:
            return row
    raise HTTPException(404, f"incident {incident_id} has no action '{action_id}'")


def _decide(svc: Service, who: Principal, row: ActionRow) -> None:
    role = needed_role(row)
    if who.role < role:
        raise HTTPException(
            403,
            f"{row.data.get('risk', 'medium')}-risk actions need the {role.label} role; {who.name} is {who.role.label}",
        )
    if row.status not in ("proposed", "awaiting_approval"):
        raise HTTPException(409, f"action '{row.action_id}' is {row.status}: there is nothing left to decide")


@router.get("", response_model=list[ActionOut])
def list_actions(incident_id: str, _: Viewer, svc: Svc) -> list[ActionOut]:
    svc.store.get_incident(incident_id)
    return [_out(row) for row in svc.store.actions(incident_id)]


@router.post("", status_code=201, response_model=ActionOut)
def propose(incident_id: str, body: ProposalIn, request: Request, who: Responder, svc: Svc) -> ActionOut:
    """A responder's proposal: recorded, audited and put to a decision like the agents' ones. It is
    carried out by people: the workflow executes the actions of its own plan."""
    svc.store.get_incident(incident_id)
    action = RecommendedAction(**body.model_dump(), priority="immediate")
    at = incident_now(svc.store, incident_id)
    with svc.store.transaction() as session:
        verb = svc.store.propose_action(session, incident_id, action.id, action.model_dump(mode="json"))
        if verb == "kept":
            raise HTTPException(409, f"action '{action.id}' exists and is no longer open to revision")
        svc.store.audit(session, incident_id, action.id, "proposed", who.name, at, {"risk": action.risk.value})
        svc.store.add_event(
            session,
            incident_id,
            TimelineEvent(
                at=at,
                kind=TimelineKind.ACTION_PROPOSED,
                source=who.name,
                summary=f"proposed ({action.risk.value} risk): {action.title}",
                data={"action_id": action.id, "kind": action.kind, "target": action.target},
            ),
            dedupe_key=f"proposed:{action.id}" if verb == "new" else None,
        )
    request.state.audit_detail = {"action_id": action.id, "risk": action.risk.value}
    return _out(_action(svc, incident_id, action.id))


def _decided(
    svc: Service, incident_id: str, action_id: str, decision: str, who: Principal, queued: str | None
) -> DecisionOut:
    """The decision is committed, and with it the run waiting at its gate marked queued: it is
    handed to the executor now (a crash before it starts loses nothing: a restart submits it)."""
    if queued is not None:
        svc.executor.submit(queued)
    return DecisionOut(
        incident_id=incident_id, action_id=action_id, decision=decision, by=who.name, run_resumed=queued is not None
    )


@router.post("/{action_id}/approve", response_model=DecisionOut)
def approve(incident_id: str, action_id: str, request: Request, who: Responder, svc: Svc) -> DecisionOut:
    """Approve a proposed action (a commander for medium and high risk); a waiting run goes on."""
    _decide(svc, who, _action(svc, incident_id, action_id))
    queued = Engine(svc.store).approve(incident_id, action_id, who.name, incident_now(svc.store, incident_id))
    request.state.audit_detail = {"action_id": action_id, "decision": "approved"}
    return _decided(svc, incident_id, action_id, "approved", who, queued)


@router.post("/{action_id}/reject", response_model=DecisionOut)
def reject(incident_id: str, action_id: str, body: RejectIn, request: Request, who: Responder, svc: Svc) -> DecisionOut:
    """Reject a proposed action with a reason; a waiting run goes on without it."""
    _decide(svc, who, _action(svc, incident_id, action_id))
    at = incident_now(svc.store, incident_id)
    queued = Engine(svc.store).reject(incident_id, action_id, who.name, body.reason, at)
    request.state.audit_detail = {"action_id": action_id, "decision": "rejected", "reason": body.reason[:200]}
    return _decided(svc, incident_id, action_id, "rejected", who, queued)
