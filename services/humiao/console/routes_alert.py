"""One alert's page: the explanation, the evidence, the child's timeline as a picture,
the version history, notes, audit, and the actions the person's role allows. The whole
ID number only after an explicit, audited click (a form post, so it is never in a URL)."""

from __future__ import annotations

import re

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from humiao.api.alerts.v1 import alerts_pb2
from humiao.api.desk.v1 import desk_pb2
from humiao.api.events.v1 import events_pb2
from humiao.console import picture
from humiao.console.actions import ACTIONS, perform, values_of
from humiao.console.desk_client import DeskRefusal
from humiao.console.filters import RESOLUTIONS
from humiao.console.sessions import Session
from humiao.console.web import (
    check_form,
    error_page,
    page,
    parts,
    refusal_page,
    signed_in,
    text_field,
)

router = APIRouter()
ALERT_ID = re.compile(r"[A-Za-z0-9_-]{1,64}", re.ASCII)


def offered(session: Session, status: str, assignee: str) -> list[str]:
    """The actions to show; the desk decides again on every call."""
    if not session.may_work:
        return []
    out = ["note"]
    if status in ("OPEN", "REOPENED"):
        out.append("acknowledge")
    if session.supervises and status in ("OPEN", "REOPENED", "ACKNOWLEDGED"):
        out.append("assign")
    if status == "ACKNOWLEDGED" and (session.supervises or assignee == session.name):
        out.append("resolve")
    if session.supervises and status == "RESOLVED":
        out.append("reopen")
    return out


async def _alert_page(request: Request, session: Session, alert_id: str, *, whole: bool
                      ) -> Response:
    if not ALERT_ID.fullmatch(alert_id):
        return error_page(request, "err_not_found", 404)
    desk = parts(request).desk
    try:
        got: desk_pb2.GetAlertResponse = await desk.call(
            session.token, "GetAlert", desk_pb2.GetAlertRequest(alert_id=alert_id,
                                                                masked=not whole))
        timeline = await desk.call(session.token, "GetChildTimeline",
                                   desk_pb2.GetChildTimelineRequest(child=got.alert.child_key,
                                                                    masked=True))
    except DeskRefusal as refusal:
        return refusal_page(request, refusal)
    a = got.alert
    status = alerts_pb2.AlertStatus.Name(a.status)
    evidence = [{
        "e": e, "summary": _summary(e.event) if e.found else "",
    } for e in got.evidence]
    response = page(request, "alert.html", {
        "a": a, "code": alerts_pb2.AlertCode.Name(a.code), "status": status,
        "program": events_pb2.Program.Name(a.program) if a.program else "",
        "evidence": evidence, "versions": list(got.versions), "notes": list(got.notes),
        "audit": list(got.audit), "actions": offered(session, status, a.assignee),
        "resolutions": RESOLUTIONS, "picture": picture.draw(timeline, a.period),
        "whole": whole,
    }, session=session)
    response.headers["Cache-Control"] = "no-store"
    return response


def _summary(env: events_pb2.Envelope) -> str:
    """One line of the fact's fields (its IDs are masked by the desk)."""
    kind = env.WhichOneof("body")
    if kind is None:
        return ""
    body = getattr(env, kind)
    parts_: list[str] = []
    for field, value in body.ListFields():
        if field.type == field.TYPE_MESSAGE:
            continue
        if field.enum_type is not None:
            value = field.enum_type.values_by_number[value].name
        parts_.append(f"{field.name}={value}")
    return ", ".join(parts_)[:400]


@router.get("/alerts/{alert_id}")
async def alert_page(request: Request, alert_id: str) -> Response:
    return await _alert_page(request, signed_in(request), alert_id, whole=False)


@router.post("/alerts/{alert_id}/reveal")
async def reveal(request: Request, alert_id: str) -> Response:
    session = signed_in(request)
    await check_form(request, session)
    return await _alert_page(request, session, alert_id, whole=True)


@router.post("/alerts/{alert_id}/{action}")
async def act(request: Request, alert_id: str, action: str) -> Response:
    session = signed_in(request)
    form = await check_form(request, session)
    if action not in ACTIONS or not ALERT_ID.fullmatch(alert_id):
        return error_page(request, "err_not_found", 404)
    version_text = text_field(form, "version", 10)
    version = int(version_text) if version_text.isdigit() else 0
    try:
        await perform(parts(request).desk, session.token, action, alert_id, version,
                      values_of(form))
    except DeskRefusal as refusal:
        return refusal_page(request, refusal)
    return RedirectResponse(f"/alerts/{alert_id}", status_code=303)
