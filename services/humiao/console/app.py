"""The console's web application: routes, security headers, limits, metrics."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import PlainTextResponse, Response
from fastapi.staticfiles import StaticFiles

from humiao.console import metrics, routes_alert, routes_auth, routes_overview, routes_queue
from humiao.console.desk_client import DeskClient, DeskRefusal
from humiao.console.sessions import SessionStore
from humiao.console.settings import ConsoleSettings
from humiao.console.web import (
    HERE,
    MAX_FORM_BYTES,
    Console,
    FormRefused,
    SignedOut,
    error_page,
    login_redirect,
    refusal_page,
)

log = logging.getLogger("humiao.console")

#: No inline script or style anywhere: htmx and the console's script are files of ours.
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "connect-src 'self'; font-src 'self'; form-action 'self'; frame-ancestors 'none'; "
       "base-uri 'none'")
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",  # no-referrer would make browsers send Origin: null
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
}


def _route_of(request: Request) -> str:
    route = request.scope.get("route")
    return getattr(route, "path", "unmatched")


def create_app(desk: DeskClient, settings: ConsoleSettings, *, development: bool = False,
               oidc_router: object | None = None) -> FastAPI:
    app = FastAPI(title="Humiao console", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.console = Console(desk, SessionStore(settings.humiao_console_session_idle_hours
                                                   * 3600), settings, development)
    app.mount("/static", StaticFiles(directory=str(Path(HERE) / "static")), name="static")
    for module in (routes_auth, routes_queue, routes_overview, routes_alert):
        app.include_router(module.router)
    if oidc_router is not None:
        app.include_router(oidc_router)  # type: ignore[arg-type]

    @app.middleware("http")
    async def guard(request: Request,
                    call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        """Size limits before anything is read, headers on every answer, one log line and
        metrics per request by route template (never the URL: no values in labels)."""
        started = time.perf_counter()
        if request.method not in ("GET", "HEAD", "POST"):
            response: Response = PlainTextResponse("method not allowed", status_code=405)
        elif request.method == "POST" and not _small_enough(request):
            response = PlainTextResponse("request too large or of unknown length",
                                         status_code=413)
        else:
            response = await call_next(request)
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        if not request.url.path.startswith("/static/"):
            response.headers.setdefault("Cache-Control", "no-store")
        route = _route_of(request)
        metrics.observe(route, response.status_code, time.perf_counter() - started)
        log.info("method=%s route=%s status=%d ms=%.1f", request.method, route,
                 response.status_code, 1000 * (time.perf_counter() - started))
        return response

    @app.exception_handler(SignedOut)
    async def signed_out(request: Request, exc: SignedOut) -> Response:
        if request.method == "GET" and not request.url.path.startswith("/alerts/stream"):
            return login_redirect(request)
        return PlainTextResponse("signed out", status_code=401)

    @app.exception_handler(FormRefused)
    async def refused(request: Request, exc: FormRefused) -> Response:
        return error_page(request, "err_csrf", 403)

    @app.exception_handler(DeskRefusal)
    async def desk_refused(request: Request, exc: DeskRefusal) -> Response:
        return refusal_page(request, exc)

    @app.get("/healthz")
    async def healthz() -> Response:
        return PlainTextResponse("ok")

    return app


def _small_enough(request: Request) -> bool:
    length = request.headers.get("content-length")
    return length is not None and length.isdigit() and int(length) <= MAX_FORM_BYTES


def json_staff_map(text: str) -> dict[str, str]:
    """HUMIAO_CONSOLE_OIDC_STAFF: {claim value: desk token}, inline or a .json file."""
    if not text.lstrip().startswith("{"):
        text = Path(text).read_text(encoding="utf-8")
    doc = json.loads(text)
    if not isinstance(doc, dict) or not all(isinstance(v, str) for v in doc.values()):
        raise ValueError("HUMIAO_CONSOLE_OIDC_STAFF must map claim values to desk tokens")
    return {str(k): v for k, v in doc.items()}
