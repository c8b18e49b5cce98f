"""The tools page: the organization's tools, switched on and off through the same tool switches as the CLI.

Seam for connected accounts (``server/integrations``, not on main yet): a section in the ``accounts`` block
of tools.html listing the organization's accounts (label, integration, health), a connect form whose secret
field is never filled back in, "test connection" and "disable" buttons — each posting to a handler here that
calls the same account functions as the HTTP integrations API (extract them from its route handlers first, as
``server.key_actions`` was for keys). The tools table then lists the organization's integration tools too.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from auth.errors import NotFound
from auth.grants import NotGrantable
from server.admin.web import checked_form, render, signed_in
from server.state import app_state


async def tools_page(request: Request) -> Response:
    user = await signed_in(request)
    state = app_state(request)
    disabled = await state.runtime.switches.disabled(user.organization_id)
    tools = sorted(state.tools.all(), key=lambda tool: tool.name)
    rows = [{"tool": tool, "enabled": tool.name not in disabled} for tool in tools]
    notice = {"enabled": "Tool enabled.", "disabled": "Tool disabled."}.get(request.query_params.get("done", ""))
    context = {"rows": rows, "may_switch": user.manages_organization, "notice": notice, "active": "tools"}
    return render(request, "tools.html", context, user=user)


async def switch_tool(request: Request) -> Response:
    user = await signed_in(request)
    form = await checked_form(request, user.csrf)
    if not user.manages_organization:
        raise NotGrantable("Only an owner or admin can switch the organization's tools")
    state = app_state(request)
    name = request.path_params["tool_name"]
    if name not in state.tools:
        raise NotFound(f"Unknown tool: {name}")
    enabled = form.get("enabled") == "1"
    await state.runtime.switches.set_enabled(user.organization_id, name, enabled)  # open sessions hear via the feed
    return RedirectResponse(f"/admin/tools?done={'enabled' if enabled else 'disabled'}", status_code=303)
