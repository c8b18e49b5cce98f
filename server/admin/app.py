"""The console as one ASGI app, mounted at /admin outside the API-key middleware (it signs users in itself)."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from auth.errors import CapgateError
from server.admin.connect import connect_page
from server.admin.pages_accounts import connect_account, switch_account, test_account
from server.admin.pages_audit import audit_page
from server.admin.pages_keys import key_create, key_detail, key_new, key_revoke, key_rotate, key_update, keys_list
from server.admin.pages_session import home, sign_in, sign_in_form, sign_out
from server.admin.pages_tools import switch_tool, tools_page
from server.admin.pages_usage import usage_page
from server.admin.security import SecurityHeaders
from server.admin.web import SignInRequired, make_templates, render
from server.state import AppState

PREFIX = "/admin"
STATIC = Path(__file__).parent / "static"


async def to_sign_in(request: Request, _exc: Exception) -> Response:
    target = request.url.path if request.method == "GET" else f"{PREFIX}/keys"
    return RedirectResponse(f"{PREFIX}/sign-in?next={quote(target)}", status_code=303)


async def error_page(request: Request, exc: Exception) -> Response:
    if isinstance(exc, CapgateError):
        status, message, headers = exc.status, exc.message, exc.headers()
    else:
        assert isinstance(exc, HTTPException)
        status, message, headers = exc.status_code, "Page not found" if exc.status_code == 404 else exc.detail, {}
    user = request.scope.get("capgate.admin_user")
    response = render(request, "error.html", {"status": status, "message": message}, status=status, user=user)
    response.headers.update({k: v for k, v in headers.items() if k.lower() != "www-authenticate"})
    return response


def admin_routes() -> list[Route | Mount]:
    return [
        Route("/", home),
        Route("/sign-in", sign_in_form),
        Route("/sign-in", sign_in, methods=["POST"]),
        Route("/sign-out", sign_out, methods=["POST"]),
        Route("/keys", keys_list),
        Route("/keys", key_create, methods=["POST"]),
        Route("/keys/new", key_new),
        Route("/keys/{key_id}", key_detail),
        Route("/keys/{key_id}", key_update, methods=["POST"]),
        Route("/keys/{key_id}/rotate", key_rotate, methods=["POST"]),
        Route("/keys/{key_id}/revoke", key_revoke, methods=["POST"]),
        Route("/usage", usage_page),
        Route("/audit", audit_page),
        Route("/tools", tools_page),
        Route("/tools/{tool_name}", switch_tool, methods=["POST"]),
        Route("/accounts", connect_account, methods=["POST"]),
        Route("/accounts/{account_id}/test", test_account, methods=["POST"]),
        Route("/accounts/{account_id}/status", switch_account, methods=["POST"]),
        Route("/connect", connect_page),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]


def build_admin(state: AppState) -> Starlette:
    admin = Starlette(
        routes=admin_routes(),
        middleware=[Middleware(SecurityHeaders)],
        exception_handlers={
            SignInRequired: to_sign_in,
            CapgateError: error_page,
            HTTPException: error_page,
        },
    )
    admin.state.capgate = state
    admin.state.templates = make_templates()
    return admin


def admin_mount(state: AppState) -> Mount:
    return Mount(PREFIX, app=build_admin(state))
