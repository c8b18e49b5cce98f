"""The tools page: the organization's tools, switched on and off through the same tool switches as the CLI,
and its connected accounts (``pages_accounts`` acts on them).
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from auth.errors import CapgateError, NotFound
from auth.grants import NotGrantable
from server.admin.sessions import SignedIn
from server.admin.web import checked_form, render, signed_in
from server.integrations import accounts, store
from server.state import AppState, app_state
from tools.registry import Tool

NOTICES = {
    "enabled": "Tool enabled.",
    "disabled": "Tool disabled.",
    "connected": "Account connected. Its secret is stored encrypted and never shown again.",
    "tested": "Connection works: the account's tools are listed.",
    "failed": "Connection failed: see the account's last error.",
    "account-ok": "Account enabled.",
    "account-disabled": "Account disabled: its tools are gone from every listing.",
}


async def organization_tools(state: AppState, organization_id: str) -> list[Tool]:
    """Installed tools and the organization's integration tools, by name."""
    integration_tools = await state.integrations.tools(organization_id)
    return sorted([*state.runtime.tools.all(), *integration_tools.values()], key=lambda tool: tool.name)


async def tools_page_with(request: Request, user: SignedIn, *, error: CapgateError | None = None) -> Response:
    state = app_state(request)
    disabled = await state.runtime.switches.disabled(user.organization_id)
    rows = [
        {"tool": tool, "enabled": tool.name not in disabled}
        for tool in await organization_tools(state, user.organization_id)
    ]
    async with state.sessions() as session:
        integrations = await store.list_integrations(session, organization_id=user.organization_id)
        connected = await accounts.list_accounts(session, organization_id=user.organization_id, integration_id=None)
    context: dict[str, Any] = {
        "rows": rows,
        "may_switch": user.manages_organization,
        "notice": NOTICES.get(request.query_params.get("done", "")),
        "error": error,
        "integrations": integrations,
        "accounts": connected,
        "active": "tools",
    }
    return render(request, "tools.html", context, status=error.status if error else 200, user=user)


async def tools_page(request: Request) -> Response:
    return await tools_page_with(request, await signed_in(request))


async def switch_tool(request: Request) -> Response:
    user = await signed_in(request)
    form = await checked_form(request, user.csrf)
    if not user.manages_organization:
        raise NotGrantable("Only an owner or admin can switch the organization's tools")
    state = app_state(request)
    name = request.path_params["tool_name"]
    if name not in {tool.name for tool in await organization_tools(state, user.organization_id)}:
        raise NotFound(f"Unknown tool: {name}")
    enabled = form.get("enabled") == "1"
    await state.runtime.switches.set_enabled(user.organization_id, name, enabled)  # open sessions hear via the feed
    return RedirectResponse(f"/admin/tools?done={'enabled' if enabled else 'disabled'}", status_code=303)
