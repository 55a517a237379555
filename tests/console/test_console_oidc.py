"""OIDC sign-in against a small identity provider of the test's own (discovery, an
authorization endpoint, a token endpoint signing RS256 ID tokens, JWKS): the claim names
the person, the deployment's map gives their desk token."""

from __future__ import annotations

import secrets
import time
from contextlib import AsyncExitStack
from typing import Any
from urllib.parse import urlencode

import httpx
from console_support import City, served_console
from joserfc import jwt
from joserfc.jwk import RSAKey
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse
from starlette.routing import Route

from desk_support import Desk
from humiao.console.desk_client import DeskClient
from humiao.console.main import build
from humiao.console.settings import ConsoleSettings

CLIENT_ID = "humiao-console"


def identity_provider(person: dict[str, str]) -> tuple[Starlette, dict[str, Any]]:
    key = RSAKey.generate_key(2048, parameters={"kid": "k1"})
    state: dict[str, Any] = {"base": "", "nonces": {}}

    async def discovery(request: Request) -> JSONResponse:
        base = state["base"]
        return JSONResponse({
            "issuer": base, "authorization_endpoint": f"{base}/authorize",
            "token_endpoint": f"{base}/token", "jwks_uri": f"{base}/jwks",
            "response_types_supported": ["code"], "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"]})

    async def authorize(request: Request) -> RedirectResponse:
        q = request.query_params
        assert q["client_id"] == CLIENT_ID
        code = secrets.token_urlsafe(8)
        state["nonces"][code] = q.get("nonce")
        back = urlencode({"code": code, "state": q["state"]})
        return RedirectResponse(f"{q['redirect_uri']}?{back}")

    async def token(request: Request) -> JSONResponse:
        form = await request.form()
        nonce = state["nonces"].pop(str(form["code"]))
        now = int(time.time())
        claims = {"iss": state["base"], "sub": "u-1", "aud": CLIENT_ID, "iat": now,
                  "exp": now + 300, "nonce": nonce, "preferred_username": person["name"]}
        id_token = jwt.encode({"alg": "RS256", "kid": "k1"}, claims, key)
        return JSONResponse({"access_token": "at", "token_type": "Bearer", "expires_in": 300,
                             "id_token": id_token})

    async def jwks(request: Request) -> JSONResponse:
        return JSONResponse({"keys": [key.as_dict(private=False)]})

    app = Starlette(routes=[Route("/.well-known/openid-configuration", discovery),
                            Route("/authorize", authorize),
                            Route("/token", token, methods=["POST"]), Route("/jwks", jwks)])
    return app, state


async def test_oidc_signs_in_the_mapped_staff_member_and_no_one_else(
    desk: Desk, city: City
) -> None:
    person = {"name": "li.si"}
    provider, state = identity_provider(person)
    async with AsyncExitStack() as stack:
        state["base"] = await stack.enter_async_context(served_console(desk, provider))
        settings = ConsoleSettings(
            humiao_console_cookie_secure=False, humiao_oidc_issuer=state["base"],
            humiao_oidc_client_id=CLIENT_ID, humiao_oidc_client_secret="s3cret",
            humiao_console_secret_key="k" * 32,
            humiao_console_oidc_staff='{"li.si": "tok-li", "gone": "tok-nobody"}')
        app = build(settings, DeskClient(desk.channel), development=False)
        console = await stack.enter_async_context(served_console(desk, app))
        async with httpx.AsyncClient(follow_redirects=True, timeout=20) as browser:
            page = await browser.get(f"{console}/auth/oidc")
            assert str(page.url) == f"{console}/alerts" and page.status_code == 200
            assert "Li · 核查员" in page.text
            assert (await browser.get(f"{console}/login?token=tok-li")).status_code == 403

        for name in ("stranger", "gone"):  # not in the map, or mapped to no desk member
            person["name"] = name
            async with httpx.AsyncClient(follow_redirects=True, timeout=20) as browser:
                page = await browser.get(f"{console}/auth/oidc")
                assert page.status_code == 403, name
                assert "humiao_session" not in browser.cookies
                assert (await browser.get(f"{console}/alerts")).url.path == "/login"
