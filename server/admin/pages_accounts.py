"""Connected accounts on the tools page: connect (the secret is never shown again), test, disable.

Every action goes through ``server.integrations.actions``, the functions the HTTP integrations API calls.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from auth.errors import CapgateError
from auth.grants import NotGrantable
from server.admin.pages_tools import tools_page_with
from server.admin.sessions import SignedIn
from server.admin.web import checked_form, signed_in
from server.integrations import actions
from server.state import app_state


def _manager(user: SignedIn) -> None:
    if not user.manages_organization:
        raise NotGrantable("Only an owner or admin can manage connected accounts")


async def connect_account(request: Request) -> Response:
    user = await signed_in(request)
    form = await checked_form(request, user.csrf)
    _manager(user)
    try:
        await actions.connect(
            app_state(request),
            organization_id=user.organization_id,
            integration_id=form.get("integration"),
            label=form.get("label"),
            credential=form.get("secret"),
            actor=user.actor_name,
        )
    except CapgateError as error:
        return await tools_page_with(request, user, error=error)
    return RedirectResponse("/admin/tools?done=connected#accounts", status_code=303)


async def test_account(request: Request) -> Response:
    user = await signed_in(request)
    await checked_form(request, user.csrf)
    _manager(user)
    account_id = request.path_params["account_id"]
    result = await actions.test(app_state(request), organization_id=user.organization_id, account_id=account_id)
    return RedirectResponse(f"/admin/tools?done={'tested' if result.ok else 'failed'}#accounts", status_code=303)


async def switch_account(request: Request) -> Response:
    user = await signed_in(request)
    form = await checked_form(request, user.csrf)
    _manager(user)
    status = "ok" if form.get("enabled") == "1" else "disabled"
    await actions.update(
        app_state(request),
        organization_id=user.organization_id,
        account_id=request.path_params["account_id"],
        actor=user.actor_name,
        status=status,
    )
    return RedirectResponse(f"/admin/tools?done=account-{status}#accounts", status_code=303)
