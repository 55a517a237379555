"""Signing in and out, and the language switch.

Three ways in: a staff token typed into the form; OIDC (Authlib), whose claim names the
staff member the desk knows; and, on the local stack only, a link carrying the
development supervisor's token (like a notebook server's token link), which is turned
into a session and taken out of the address bar at once.
"""

from __future__ import annotations

import secrets
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from humiao.console.desk_client import DeskRefusal
from humiao.console.web import (
    LANG_COOKIE,
    SESSION_COOKIE,
    FormRefused,
    current,
    error_page,
    page,
    parts,
    safe_next,
    same_origin,
    text_field,
)

router = APIRouter()
LOGIN_COOKIE = "humiao_login"
MAX_TOKEN = 256


def set_cookie(request: Request, response: Response, name: str, value: str,
               max_age: int | None = None) -> None:
    response.set_cookie(name, value, max_age=max_age, httponly=True, samesite="strict",
                        secure=parts(request).settings.humiao_console_cookie_secure, path="/")


async def open_session(request: Request, token: str, target: str) -> Response | None:
    """A session for `token` when the desk knows it; None when it does not."""
    console = parts(request)
    try:
        who = await console.desk.who(token)
    except DeskRefusal as refusal:
        if refusal.kind in ("signed_out", "forbidden", "invalid"):
            return None
        raise
    console.sessions.drop(request.cookies.get(SESSION_COOKIE))
    session = console.sessions.create(token, who.name, who.role, tuple(who.regions),
                                      who.all_regions)
    response = RedirectResponse(safe_next(target), status_code=303)
    set_cookie(request, response, SESSION_COOKIE, session.sid)
    response.delete_cookie(LOGIN_COOKIE, path="/")
    return response


def login_form(request: Request, failed: bool = False) -> Response:
    nonce = secrets.token_urlsafe(24)
    response = page(request, "login.html", {
        "failed": failed, "nonce": nonce, "next": safe_next(request.query_params.get("next")),
        "oidc": parts(request).settings.oidc_enabled}, status_code=401 if failed else 200)
    set_cookie(request, response, LOGIN_COOKIE, nonce, max_age=3600)
    return response


@router.get("/login")
async def login_page(request: Request) -> Response:
    token = request.query_params.get("token")
    if token is not None:
        if not parts(request).development:
            return error_page(request, "err_forbidden", 403)
        opened = await open_session(request, token[:MAX_TOKEN], "/alerts")
        return opened or login_form(request, failed=True)
    return login_form(request)


@router.post("/login")
async def login_submit(request: Request) -> Response:
    form = await request.form(max_files=0, max_fields=10, max_part_size=4096)
    nonce = form.get("nonce")
    cookie = request.cookies.get(LOGIN_COOKIE)
    if not same_origin(request) or not cookie or nonce != cookie:
        raise FormRefused
    token = text_field(form, "token", MAX_TOKEN)
    opened = await open_session(request, token, text_field(form, "next", 2048)) if token else None
    return opened or login_form(request, failed=True)


@router.post("/logout")
async def logout(request: Request) -> Response:
    session = current(request)
    if session is not None:
        form = await request.form(max_files=0, max_fields=5, max_part_size=1024)
        token = form.get("csrf")
        if not session.csrf_ok(token if isinstance(token, str) else None):
            raise FormRefused
        parts(request).sessions.drop(session.sid)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@router.get("/lang/{lang}")
async def switch_language(request: Request, lang: str) -> Response:
    """Remembered in a cookie for a year; back to the page the switch was on."""
    response = RedirectResponse(safe_next(request.query_params.get("next")), status_code=303)
    if lang in ("zh", "en"):
        set_cookie(request, response, LANG_COOKIE, lang, max_age=365 * 86400)
    return response


def oidc_routes(oauth_client: Any, claim: str, staff_tokens: dict[str, str]) -> APIRouter:
    """The OIDC sign-in: the claim's value names the staff member (HUMIAO_OIDC_CLAIM),
    whose desk token the deployment maps it to (HUMIAO_CONSOLE_OIDC_STAFF)."""
    oidc = APIRouter()

    @oidc.get("/auth/oidc")
    async def start(request: Request) -> Response:
        redirect_uri = str(request.url_for("oidc_callback"))
        public = parts(request).settings.humiao_console_public_url
        if public:
            redirect_uri = public.rstrip("/") + "/auth/oidc/callback"
        request.session["next"] = safe_next(request.query_params.get("next"))
        response: Response = await oauth_client.authorize_redirect(request, redirect_uri)
        return response

    @oidc.get("/auth/oidc/callback", name="oidc_callback")
    async def callback(request: Request) -> Response:
        from authlib.integrations.base_client import OAuthError

        try:
            token = await oauth_client.authorize_access_token(request)
        except OAuthError:
            return error_page(request, "sign_in_failed", 401)
        userinfo = token.get("userinfo") or {}
        person = str(userinfo.get(claim, ""))
        staff_token = staff_tokens.get(person)
        if not staff_token:
            return error_page(request, "sign_in_failed", 403)
        opened = await open_session(request, staff_token, request.session.pop("next", "/alerts"))
        return opened or error_page(request, "sign_in_failed", 403)

    return oidc
