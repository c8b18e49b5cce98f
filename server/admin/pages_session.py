"""Signing in and out of the console."""

from __future__ import annotations

import secrets
from datetime import timedelta

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from auth.audit import record_audit
from auth.basic import BasicCredentials, InvalidCredentials
from auth.errors import RateLimited
from server.admin.sessions import close_all_sessions, close_session, open_session
from server.admin.web import (
    SESSION_COOKIE,
    SIGN_IN_COOKIE,
    SignInRequired,
    checked_form,
    render,
    set_cookie,
    signed_in,
    source_of,
)
from server.key_actions import sign_in as check_password
from server.state import app_state

HOME = "/admin/keys"


def _safe_next(target: str) -> str:
    """Only a path inside the console: never an open redirect to another site."""
    if target.startswith("/admin/") and not target.startswith("//") and "\\" not in target:
        return target
    return HOME


async def home(request: Request) -> Response:
    return RedirectResponse(HOME, status_code=303)


def _sign_in_page(request: Request, *, error: str | None, email: str, status: int, headers: dict[str, str]) -> Response:
    token = request.cookies.get(SIGN_IN_COOKIE) or secrets.token_urlsafe(24)
    next_path = _safe_next(request.query_params.get("next", HOME))
    response = render(
        request,
        "sign_in.html",
        {"error": error, "email": email, "sign_in_csrf": token, "next": next_path},
        status=status,
    )
    response.headers.update(headers)
    set_cookie(request, response, SIGN_IN_COOKIE, token, max_age=3600)
    return response


async def sign_in_form(request: Request) -> Response:
    try:
        await signed_in(request)
    except SignInRequired:
        return _sign_in_page(request, error=None, email="", status=200, headers={})
    return RedirectResponse(HOME, status_code=303)


async def sign_in(request: Request) -> Response:
    state = app_state(request)
    form = await checked_form(request, request.cookies.get(SIGN_IN_COOKIE))
    email, password = form.get("email").lower(), form.get("password")
    if not email or not password:
        return _sign_in_page(request, error="Enter your email and password.", email=email, status=400, headers={})
    source = source_of(request)
    try:
        user = await check_password(state, BasicCredentials(email=email, password=password), source=source)
    except InvalidCredentials as error:
        return _sign_in_page(request, error=error.message + ".", email=email, status=401, headers={})
    except RateLimited as error:
        return _sign_in_page(request, error=error.message + ".", email=email, status=429, headers=error.headers())
    lifetime = timedelta(seconds=state.settings.admin_session_seconds)
    async with state.sessions.begin() as session:
        token = await open_session(session, user=user, now=state.now(), lifetime=lifetime, source=source)
        record_audit(
            session,
            action="console.signed_in",
            actor=f"user:{user.email}",
            organization_id=user.organization_id,
            source=source,
        )
    response = RedirectResponse(_safe_next(form.get("next", HOME)), status_code=303)
    set_cookie(request, response, SESSION_COOKIE, token, max_age=int(lifetime.total_seconds()))
    response.delete_cookie(SIGN_IN_COOKIE, path="/admin")
    return response


async def sign_out(request: Request) -> Response:
    user = await signed_in(request)
    form = await checked_form(request, user.csrf)
    state = app_state(request)
    async with state.sessions.begin() as session:
        if form.checked("everywhere"):
            await close_all_sessions(session, user_id=user.user_id)
        else:
            await close_session(session, session_id=user.session_id)
    response = RedirectResponse("/admin/sign-in", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/admin")
    return response
