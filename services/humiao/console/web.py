"""What every console route shares: the session, the language, rendering, CSRF, errors.

Routes call `signed_in` for the person's session (or are sent to the sign-in page),
`check_form` before any change (CSRF token and same origin), and `page` to render.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from starlette.datastructures import FormData

from humiao.api.alerts.v1 import alerts_pb2
from humiao.console import i18n
from humiao.console.desk_client import DeskClient, DeskRefusal
from humiao.console.sessions import Session, SessionStore
from humiao.console.settings import ConsoleSettings
from humiao.domain.identity import holds_id_shape

log = logging.getLogger("humiao.console")

HERE = Path(__file__).parent
SESSION_COOKIE = "humiao_session"
LANG_COOKIE = "humiao_lang"
#: Form posts are small: a bulk action names at most MAX_SELECTED alerts.
MAX_FORM_BYTES = 64 * 1024
MAX_SELECTED = 200
MAX_TEXT = 4000

templates = Jinja2Templates(directory=str(HERE / "templates"))
templates.env.globals.update(
    yuan=i18n.yuan, code_label=i18n.code_label, status_label=i18n.status_label,
    resolution_label=i18n.resolution_label, program_label=i18n.program_label,
    local_time=i18n.local_time, duration=i18n.duration, role_zh=i18n.ROLES_ZH, utc=dt.UTC,
    status_name=alerts_pb2.AlertStatus.Name, resolution_name=alerts_pb2.Resolution.Name, list=list,
)


class SignedOut(Exception):
    """No live session: GET pages go to the sign-in page, the rest are refused."""


class FormRefused(Exception):
    """A change without a valid CSRF token or from another origin."""


@dataclass
class Console:
    """The console's parts, kept on app.state."""

    desk: DeskClient
    sessions: SessionStore
    settings: ConsoleSettings
    development: bool


def parts(request: Request) -> Console:
    console: Console = request.app.state.console
    return console


def language(request: Request) -> str:
    lang = request.cookies.get(LANG_COOKIE, "zh")
    return lang if lang in i18n.LANGUAGES else "zh"


def current(request: Request) -> Session | None:
    return parts(request).sessions.get(request.cookies.get(SESSION_COOKIE))


def signed_in(request: Request) -> Session:
    session = current(request)
    if session is None:
        raise SignedOut
    return session


def same_origin(request: Request) -> bool:
    """No Origin header (an old client) passes; any Origin must be this console's host
    ("null", sent from sandboxed pages, is not)."""
    origin = request.headers.get("origin")
    return origin is None or origin.split("://", 1)[-1] == request.headers.get("host", "")


async def check_form(request: Request, session: Session) -> FormData:
    """The posted form, once its CSRF token and origin are right."""
    form = await request.form(max_files=0, max_fields=MAX_SELECTED + 50, max_part_size=16_384)
    token = form.get("csrf")
    if not same_origin(request) or not session.csrf_ok(token if isinstance(token, str) else None):
        raise FormRefused
    return form


def text_field(form: FormData, name: str, max_len: int = MAX_TEXT) -> str:
    value = form.get(name)
    if not isinstance(value, str):
        return ""
    return value.strip()[:max_len + 1]


def safe_next(target: str | None) -> str:
    """Only a path of this console: never another site (an open redirect)."""
    if (not target or not target.startswith("/") or target.startswith("//")
            or "\\" in target or len(target) > 2048):
        return "/alerts"
    return target


def login_redirect(request: Request) -> RedirectResponse:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"/login?next={quote(safe_next(target), safe='')}", status_code=303)


def page(request: Request, name: str, context: Mapping[str, Any], *,
         status_code: int = 200, session: Session | None = None) -> HTMLResponse:
    lang = language(request)
    session = session or current(request)
    full = {"request": request, "lang": lang, "w": i18n.words(lang), "session": session,
            "csrf": session.csrf if session else "", "path": request.url.path,
            "here": here(request),
            **context}
    return templates.TemplateResponse(request, name, full, status_code=status_code)


def here(request: Request) -> str:
    """This page's path and query, for links back to it (the language switch); the query
    is dropped when it holds something ID-shaped, so no page repeats an ID in a link."""
    query = request.url.query
    if not query or holds_id_shape(unquote(query)):
        return request.url.path
    return f"{request.url.path}?{query}"


_REFUSAL_STATUS = {"not_found": 404, "forbidden": 403, "moved_on": 409, "invalid": 400,
                   "limited": 429, "signed_out": 401, "unavailable": 503}


def refusal_page(request: Request, refusal: DeskRefusal) -> Response:
    if refusal.kind == "signed_out":
        parts(request).sessions.drop(request.cookies.get(SESSION_COOKIE))
        return login_redirect(request)
    w = i18n.words(language(request))
    detail = refusal.detail if refusal.kind == "invalid" else ""
    return page(request, "error.html", {"message": w[f"err_{refusal.kind}"], "detail": detail},
                status_code=_REFUSAL_STATUS.get(refusal.kind, 503))


def error_page(request: Request, key: str, status_code: int, detail: str = "") -> HTMLResponse:
    w = i18n.words(language(request))
    return page(request, "error.html", {"message": w[key], "detail": detail},
                status_code=status_code)
