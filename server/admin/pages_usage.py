"""The usage page: per organization or per key, calls per day and per hour, refusals and top tools."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from server import key_actions
from server.admin.charts import bar_chart
from server.admin.usage import read_usage
from server.admin.web import actor_for, render, signed_in
from server.state import app_state


async def usage_page(request: Request) -> Response:
    user = await signed_in(request)
    state = app_state(request)
    actor = actor_for(request, user)
    chosen = request.query_params.get("key", "").strip()
    selected = await key_actions.load_key(state, actor, chosen) if chosen else None  # 404 for anyone else's key
    key_ids: list[str] | None = None
    if selected is not None:
        key_ids = [selected.id]
    elif actor.own_keys_of is not None:
        # A member's "organization" is the keys they created; owners and admins see everything.
        key_ids = [key.id for key in await key_actions.list_keys(state, actor)]
    async with state.sessions() as session:
        usage = await read_usage(session, organization_id=user.organization_id, key_ids=key_ids, now=state.now())
    context = {
        "selected": selected,
        "daily": bar_chart("Tool calls per day, last 30 days (UTC)", usage.per_day, label_every=5),
        "hourly": bar_chart("Tool calls per hour today (UTC)", usage.per_hour, label_every=3),
        "usage": usage,
        "active": "usage",
    }
    return render(request, "usage.html", context, user=user)
