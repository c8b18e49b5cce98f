"""The audit page: key lifecycle events (and sign-ins, refusal tallies), filterable and paged, newest first.

The page is a set of tabs, each a table with its own filters; ``AUDIT_VIEWS`` names them. Seam for the
authorization decision records (observability work, branch wt-observe, not on main yet): add
``("decisions", "Authorization decisions")`` to ``AUDIT_VIEWS`` and, for ``view=decisions``, read
``server.observability.queries.list_decisions(session, organization_id=..., limit=PAGE_SIZE + 1, key_id=...,
outcome=..., before_id=...)`` — the same newest-first, ``before``-cursor paging as here — into a table
template; members need a ``key_ids`` filter there, as ``list_audit_events`` has. The usage page's
"refused requests by reason" can then count denied decisions instead of the auth-failure tallies.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from auth.audit import list_audit_events
from server import key_actions
from server.admin.web import actor_for, render, signed_in
from server.state import app_state

PAGE_SIZE = 50
ACTIONS = [
    ("key.created", "key created"),
    ("key.updated", "key changed"),
    ("key.rotated", "key rotated"),
    ("key.revoked", "key revoked"),
    ("key.streams_terminated", "streams closed"),
    ("auth.failed", "refused requests"),
    ("console.signed_in", "console sign-in"),
]
AUDIT_VIEWS = [("events", "Key events")]


async def audit_page(request: Request) -> Response:
    user = await signed_in(request)
    state = app_state(request)
    actor = actor_for(request, user)
    params = request.query_params
    action = params.get("action") or None
    if action not in {name for name, _ in ACTIONS}:
        action = None
    key_id = (params.get("key") or "").strip() or None
    before = params.get("before", "")
    before_id = int(before) if before.isdigit() else None
    key_ids = None
    if actor.own_keys_of is not None:
        key_ids = [key.id for key in await key_actions.list_keys(state, actor)]
    async with state.sessions() as session:
        events = await list_audit_events(
            session,
            organization_id=user.organization_id,
            limit=PAGE_SIZE + 1,
            action=action,
            key_id=key_id,
            key_ids=key_ids,
            before_id=before_id,
        )
    older = events[PAGE_SIZE - 1].id if len(events) > PAGE_SIZE else None
    context = {
        "events": events[:PAGE_SIZE],
        "actions": ACTIONS,
        "views": AUDIT_VIEWS,
        "view": "events",
        "filters": {"action": action or "", "key": key_id or ""},
        "older": older,
        "paged": before_id is not None,
        "active": "audit",
    }
    return render(request, "audit.html", context, user=user)
