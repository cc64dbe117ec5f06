"""The web incident room: server-rendered pages over the same reads as the API.

Logging in stores the token in an HttpOnly, SameSite=Strict cookie, so the page's own requests
(the SSE stream, approve and reject) carry it and other sites' pages cannot."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Depends, Form, HTTPException, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from warroom.record import ActionRecord
from warroom.serve.api.actions import needed_role
from warroom.serve.api.deps import Service, service
from warroom.serve.api.incidents import list_incidents
from warroom.serve.auth import COOKIE, Principal, Role, authenticate
from warroom.serve.room import report_path, room_view
from warroom.store.tokens import find_token

TEMPLATES = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))
router = APIRouter(include_in_schema=False)
Svc = Annotated[Service, Depends(service)]


class LoginRequired(Exception):
    """A page was asked for without a valid session: send the browser to the login form."""


def viewer(request: Request) -> Principal:
    svc: Service = request.app.state.service
    try:
        principal = authenticate(request, svc.tokens, svc.config.auth)
    except HTTPException as exc:
        if exc.status_code == 401:
            raise LoginRequired from None
        raise
    request.state.principal = principal
    return principal


Viewer = Annotated[Principal, Depends(viewer)]


def login_redirect(request: Request) -> RedirectResponse:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"/login?next={quote(target)}", status_code=303)


@router.get("/", name="home")
def home() -> RedirectResponse:
    return RedirectResponse("/incidents", status_code=303)


@router.get("/login", response_class=HTMLResponse, name="login_page")
def login_page(request: Request, next: str = "/incidents") -> HTMLResponse:
    return TEMPLATES.TemplateResponse(request, "login.html", {"next": next, "principal": None, "error": None})


@router.post("/login", name="login", response_model=None)
def login(
    request: Request, svc: Svc, token: Annotated[str, Form()], next: Annotated[str, Form()] = "/incidents"
) -> Response:
    info = find_token(svc.store, token.strip())
    if info is None:
        context = {"next": next, "principal": None, "error": "That token is not valid (unknown or revoked)."}
        return TEMPLATES.TemplateResponse(request, "login.html", context, status_code=401)
    request.state.principal = Principal(info.name, Role.parse(info.role), "token")
    target = next if next.startswith("/") and not next.startswith("//") else "/incidents"  # no open redirect
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(COOKIE, token.strip(), httponly=True, samesite="strict", secure=request.url.scheme == "https")
    return response


@router.post("/logout", name="logout")
def logout() -> RedirectResponse:
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(COOKIE)
    return response


@router.get("/incidents", response_class=HTMLResponse, name="incidents_page")
def incidents_page(request: Request, who: Viewer, svc: Svc) -> HTMLResponse:
    incidents = list_incidents(who, svc)
    return TEMPLATES.TemplateResponse(request, "incidents.html", {"incidents": incidents, "principal": who})


@router.get("/incidents/{incident_id}", response_class=HTMLResponse, name="incident_page")
def incident_page(incident_id: str, request: Request, who: Viewer, svc: Svc) -> HTMLResponse:
    room = room_view(svc.store, incident_id, svc.reports_dir)
    rows = {row.action_id: row for row in svc.store.actions(incident_id)}

    def needs(action: ActionRecord) -> str:
        return needed_role(rows[action.action.id]).label if action.action.id in rows else Role.COMMANDER.label

    def can_decide(action: ActionRecord) -> bool:
        return action.action.id in rows and who.role >= needed_role(rows[action.action.id])

    context = {
        "room": room,
        "principal": who,
        "last_seq": max((e.seq or 0 for e in room.timeline), default=0),
        "needs": needs,
        "can_decide": can_decide,
        # the role of the cancel and re-run endpoints: the others would get 403, so are not shown them
        "can_command": who.role >= Role.COMMANDER,
    }
    return TEMPLATES.TemplateResponse(request, "incident.html", context)


@router.get("/incidents/{incident_id}/evidence/{evidence_id}", response_class=HTMLResponse, name="evidence_page")
def evidence_page(incident_id: str, evidence_id: str, request: Request, who: Viewer, svc: Svc) -> HTMLResponse:
    room = room_view(svc.store, incident_id, svc.reports_dir)
    index = room.index
    ev = index.evidence.get(evidence_id) if index else None
    if index is None or ev is None:
        raise HTTPException(404, f"incident {incident_id} has no evidence '{evidence_id}'")
    # the report's charts of the series this evidence rests on
    charts = [{"label": c.title, "svg": c.svg} for c in room.charts if evidence_id in c.evidence_ids]
    context = {
        "incident_id": incident_id,
        "ev": ev,
        "cited_by": index.cited_by.get(evidence_id, []),
        "charts": charts,
        "principal": who,
    }
    return TEMPLATES.TemplateResponse(request, "evidence.html", context)


@router.get("/incidents/{incident_id}/postmortem", name="postmortem_page")
def postmortem_page(incident_id: str, _: Viewer, svc: Svc) -> FileResponse:
    svc.store.get_incident(incident_id)
    path = report_path(svc.reports_dir, incident_id, "html")
    if not path.is_file():
        raise HTTPException(404, f"the postmortem of {incident_id} is not written yet")
    return FileResponse(path, media_type="text/html; charset=utf-8")
