"""What every console page needs: the signed-in user, checked forms, the cookie and rendering."""

from __future__ import annotations

import hmac
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import jinja2
from starlette.requests import Request
from starlette.responses import Response
from starlette.templating import Jinja2Templates

from auth.errors import CapgateError
from server.admin.sessions import SignedIn, find_session
from server.key_actions import Actor
from server.routes.bodies import read_body
from server.state import AppState, app_state

SESSION_COOKIE = "capgate_admin"
SIGN_IN_COOKIE = "capgate_admin_signin"  # the sign-in form's CSRF token, before there is a session
COOKIE_PATH = "/admin"
MAX_FORM_BYTES = 64 * 1024

TEMPLATES = Path(__file__).parent / "templates"


def make_templates() -> Jinja2Templates:
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True, undefined=jinja2.StrictUndefined
    )
    return Jinja2Templates(env=environment)


class SignInRequired(Exception):
    """No valid session: the page answers with a redirect to the sign-in form."""


class FormRejected(CapgateError):
    status = 403
    code = "csrf_failed"
    message = "This form has expired or did not come from this console; reload the page and try again"


class Form:
    def __init__(self, raw: bytes) -> None:
        self._values = parse_qs(raw.decode("utf-8", errors="replace"), keep_blank_values=True)

    def get(self, name: str, default: str = "") -> str:
        values = self._values.get(name)
        return values[0].strip() if values else default

    def getlist(self, name: str) -> list[str]:
        return [value.strip() for value in self._values.get(name, []) if value.strip()]

    def checked(self, name: str) -> bool:
        return self.get(name) in ("1", "on", "true")


def source_of(request: Request) -> str | None:
    return request.client.host if request.client else None


def uses_https(request: Request, state: AppState) -> bool:
    return request.url.scheme == "https" or state.public_base_url.startswith("https://")


def set_cookie(request: Request, response: Response, name: str, value: str, *, max_age: int | None) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path=COOKIE_PATH,
        httponly=True,
        samesite="lax",
        secure=uses_https(request, app_state(request)),
    )


async def signed_in(request: Request) -> SignedIn:
    """The current user, or SignInRequired. Cached on the request, so a page reads it once."""
    cached = request.scope.get("capgate.admin_user")
    if cached is not None:
        return cached  # type: ignore[no-any-return]
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        raise SignInRequired()
    state = app_state(request)
    async with state.sessions() as session:
        user = await find_session(session, token=token, now=state.now())
    if user is None:
        raise SignInRequired()
    request.scope["capgate.admin_user"] = user
    return user


def actor_for(request: Request, user: SignedIn) -> Actor:
    """Owners and admins act on the whole organization's keys; a member only on the keys they created."""
    return Actor(
        name=user.actor_name,
        organization_id=user.organization_id,
        rights=user.rights,
        source=source_of(request),
        own_keys_of=None if user.manages_organization else user.actor_name,
        held_scopes=user.rights.scopes,
    )


def _same_origin(request: Request) -> bool:
    """Browsers send Origin with every POST; a form posted from another site names that site."""
    origin = request.headers.get("origin")
    if origin is None:
        return True
    ours = {request.headers.get("host", ""), urlsplit(app_state(request).public_base_url).netloc}
    return urlsplit(origin).netloc in ours


async def read_form(request: Request) -> Form:
    return Form(await read_body(request, MAX_FORM_BYTES))


async def checked_form(request: Request, expected_csrf: str | None) -> Form:
    """The form, if it carries this session's CSRF token and comes from this origin; otherwise 403."""
    form = await read_form(request)
    presented = form.get("csrf")
    if not expected_csrf or not presented or not _same_origin(request):
        raise FormRejected()
    if not hmac.compare_digest(presented.encode(), expected_csrf.encode()):
        raise FormRejected()
    return form


def render(
    request: Request, template: str, context: dict[str, Any], *, status: int = 200, user: SignedIn | None = None
) -> Response:
    state = app_state(request)
    values = {
        "user": user,
        "csrf": user.csrf if user else None,
        "base_url": state.public_base_url,
        "active": None,
        **context,
    }
    templates: Jinja2Templates = request.app.state.templates
    return templates.TemplateResponse(request, template, values, status_code=status)
