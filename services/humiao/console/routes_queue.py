"""The queue: alerts as rows with filters kept in the URL, live marks, bulk actions and
the ledger export."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response, StreamingResponse

from humiao.api.alerts.v1 import alerts_pb2
from humiao.api.desk.v1 import desk_pb2
from humiao.console import export, i18n
from humiao.console.actions import perform, values_of
from humiao.console.desk_client import DeskRefusal
from humiao.console.filters import (
    CODES,
    PAGE_SIZES,
    RESOLUTIONS,
    STATUSES,
    BadFilter,
    QueueQuery,
)
from humiao.console.sessions import MAX_STREAMS_PER_SESSION, Session
from humiao.console.web import (
    MAX_SELECTED,
    check_form,
    error_page,
    language,
    page,
    parts,
    refusal_page,
    signed_in,
    text_field,
)

router = APIRouter()
#: A live stream sends a comment this often so proxies keep it open.
KEEPALIVE_SECONDS = 15.0


def _since(request: Request) -> dt.datetime | None:
    text = request.query_params.get("since", "")
    if not text.isdigit() or len(text) > 12:
        return None
    return dt.datetime.fromtimestamp(int(text), dt.UTC)


async def _results(request: Request, session: Session, query: QueueQuery
                   ) -> tuple[desk_pb2.ListAlertsResponse, dict[str, object]]:
    response: desk_pb2.ListAlertsResponse = await parts(request).desk.call(
        session.token, "ListAlerts", query.list_request(session.name))
    since = _since(request)
    now = dt.datetime.now(dt.UTC)
    selected = {s.partition(":")[0] for s in request.query_params.getlist("sel")}
    rows = []
    for a in response.alerts:
        updated = a.updated_at.ToDatetime(dt.UTC)
        rows.append({
            "a": a, "code": alerts_pb2.AlertCode.Name(a.code),
            "status": alerts_pb2.AlertStatus.Name(a.status),
            "age": (now - a.raised_at.ToDatetime(dt.UTC)).total_seconds(),
            "fresh": since is not None and updated > since,
            "checked": a.alert_id in selected,  # kept across a live refresh
        })
    context: dict[str, object] = {
        "query": query, "rows": rows, "response": response,
        "next_url": query.url(page=response.next_page_token) if response.next_page_token else "",
        "first_url": query.url(page="") if query.page else "",
        "since": int(since.timestamp()) if since else int(now.timestamp()),
    }
    return response, context


@router.get("/")
async def home() -> Response:
    return RedirectResponse("/alerts", status_code=303)


@router.get("/alerts")
async def queue(request: Request) -> Response:
    session = signed_in(request)
    query = parsed_query(request)
    if isinstance(query, Response):
        return query
    try:
        _, context = await _results(request, session, query)
    except DeskRefusal as refusal:
        return refusal_page(request, refusal)
    template = "_results.html" if request.headers.get("hx-request") else "queue.html"
    return page(request, template, {
        **context, "codes": CODES, "statuses": STATUSES, "resolutions": RESOLUTIONS,
        "sizes": PAGE_SIZES, "regions": session.regions,
        "stream_url": query.url("/alerts/stream", page=""),
        "results_url": query.url("/alerts", since=context["since"]),
        "export_csv": query.url("/export.csv", page=""),
        "export_xlsx": query.url("/export.xlsx", page=""),
    }, session=session)


def parsed_query(request: Request) -> QueueQuery | Response:
    """The queue filters of the URL, or the page that names the one at fault."""
    try:
        return QueueQuery.parse(_multi(request))
    except BadFilter as exc:
        return error_page(request, "err_bad_filter", 400, str(exc))


def _multi(request: Request) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for key, value in request.query_params.multi_items():
        out.setdefault(key, []).append(value)
    return out


@router.get("/alerts/stream")
async def stream(request: Request) -> Response:
    """Server-sent events: `changed` whenever an alert of the filter gets a new version
    (the page then reloads its rows and marks the changed ones)."""
    session = signed_in(request)
    query = parsed_query(request)
    if isinstance(query, Response):
        return query
    if session.streams >= MAX_STREAMS_PER_SESSION:
        return Response(status_code=429)
    desk = parts(request).desk

    async def events() -> AsyncIterator[str]:
        session.streams += 1
        try:
            yield "retry: 5000\n\n"
            watch = desk.watch(session.token,
                               desk_pb2.WatchAlertsRequest(filter=query.desk_filter(session.name)))
            last = time.monotonic()
            async for item in watch:
                if item.HasField("change"):
                    yield f"event: changed\ndata: {item.change.version.alert_id}\n\n"
                    last = time.monotonic()
                elif time.monotonic() - last > KEEPALIVE_SECONDS:
                    yield ": keepalive\n\n"
                    last = time.monotonic()
        except DeskRefusal:
            return  # the person was signed out or deactivated: the stream ends
        finally:
            session.streams -= 1

    return StreamingResponse(events(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})


@dataclass
class Outcome:
    alert_id: str
    done: bool
    reason: str = ""


async def _one(request: Request, session: Session, action: str, alert_id: str, version: int,
               form_values: dict[str, str]) -> Outcome:
    try:
        await perform(parts(request).desk, session.token, action, alert_id, version,
                      form_values)
    except DeskRefusal as refusal:
        w = i18n.words(language(request))
        detail = f" ({refusal.detail})" if refusal.kind == "invalid" else ""
        return Outcome(alert_id, False, w[f"err_{refusal.kind}"] + detail)
    return Outcome(alert_id, True)


@router.post("/alerts/bulk")
async def bulk(request: Request) -> Response:
    """Each selected alert is answered on its own: some may have moved on since the page
    was drawn (their version changed); they are named, the rest are done."""
    session = signed_in(request)
    form = await check_form(request, session)
    action = text_field(form, "action", 20)
    picked = [v for v in form.getlist("sel") if isinstance(v, str)]
    if action not in ("acknowledge", "assign", "resolve") or not picked:
        return error_page(request, "err_invalid", 400, "action, sel")
    if len(picked) > MAX_SELECTED:
        return error_page(request, "err_too_many", 400)
    values = values_of(form)
    outcomes = []
    for item in picked:
        alert_id, _, version = item.partition(":")
        if not version.isdigit() or not alert_id or len(alert_id) > 64:
            outcomes.append(Outcome(alert_id[:64], False, "sel"))
            continue
        outcomes.append(await _one(request, session, action, alert_id, int(version), values))
    back = text_field(form, "back", 2048)
    return page(request, "bulk.html", {
        "outcomes": outcomes, "action": action,
        "back": back if back.startswith("/alerts") else "/alerts",
        "done": sum(o.done for o in outcomes)}, session=session)


async def _all_rows(request: Request, session: Session, query: QueueQuery
                    ) -> list[desk_pb2.Alert] | None:
    """Every alert of the filter, paged through the desk; None when over the cap."""
    cap = parts(request).settings.humiao_console_export_max_rows
    desk = parts(request).desk
    out: list[desk_pb2.Alert] = []
    token = ""
    while True:
        listing = replace(query, size=200, page=token)
        response = await desk.call(session.token, "ListAlerts",
                                   listing.list_request(session.name))
        out.extend(response.alerts)
        if len(out) > cap:
            return None
        token = response.next_page_token
        if not token:
            return out


def _export_response(alerts: list[desk_pb2.Alert], fmt: str, lang: str) -> Response:
    stamp = dt.datetime.now(i18n.SHANGHAI).strftime("%Y%m%d-%H%M")
    if fmt == "csv":
        return Response(export.to_csv(alerts, lang), media_type="text/csv; charset=utf-8",
                        headers={"Content-Disposition":
                                 f'attachment; filename="ledger-{stamp}.csv"'})
    return Response(
        export.to_xlsx(alerts, lang),
        media_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        headers={"Content-Disposition": f'attachment; filename="ledger-{stamp}.xlsx"'})


@router.get("/export.{fmt}")
async def export_masked(request: Request, fmt: str) -> Response:
    session = signed_in(request)
    if fmt not in ("csv", "xlsx"):
        return error_page(request, "err_not_found", 404)
    query = parsed_query(request)
    if isinstance(query, Response):
        return query
    try:
        alerts = await _all_rows(request, session, query)
    except DeskRefusal as refusal:
        return refusal_page(request, refusal)
    if alerts is None:
        return error_page(request, "err_too_many", 400)
    return _export_response(alerts, fmt, language(request))


@router.post("/export.xlsx")
async def export_whole(request: Request) -> Response:
    """The ledger with whole ID numbers: each alert read whole from the desk, which
    audits every read and stops at its hourly limit (then nothing is exported)."""
    session = signed_in(request)
    form = await check_form(request, session)
    try:
        query = QueueQuery.parse({k: [v for v in form.getlist(k) if isinstance(v, str)]
                                  for k in form if k != "csrf"})
        alerts = await _all_rows(request, session, query)
        if alerts is None:
            return error_page(request, "err_too_many", 400)
        whole = []
        for a in alerts:
            got = await parts(request).desk.call(session.token, "GetAlert",
                                                 desk_pb2.GetAlertRequest(alert_id=a.alert_id))
            whole.append(got.alert)
    except BadFilter as exc:
        return error_page(request, "err_bad_filter", 400, str(exc))
    except DeskRefusal as refusal:
        return refusal_page(request, refusal)
    response = _export_response(whole, "xlsx", language(request))
    response.headers["Cache-Control"] = "no-store"
    return response
