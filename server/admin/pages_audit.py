"""The audit page: key lifecycle events (and sign-ins, refusal tallies) and authorization decisions,
each a tab with its own filters, newest first, paged by a ``before`` cursor.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from auth.audit import list_audit_events
from server import key_actions
from server.admin.web import actor_for, render, signed_in
from server.observability.queries import list_decisions
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
AUDIT_VIEWS = [("events", "Key events"), ("decisions", "Authorization decisions")]
OUTCOMES = [("allowed", "allowed"), ("refused", "refused")]


def tab(
    view: str,
    rows: Sequence[Any],
    choices: list[tuple[str, str]],
    chosen: str | None,
    key_id: str | None,
    before_id: int | None,
) -> dict[str, Any]:
    """One page of a tab's rows (newest first; one row more than a page was read) and its filters."""
    return {
        view: rows[:PAGE_SIZE],
        "older": rows[PAGE_SIZE - 1].id if len(rows) > PAGE_SIZE else None,
        "paged": before_id is not None,
        "actions": choices,
        "views": AUDIT_VIEWS,
        "view": view,
        "filters": {"action": chosen or "", "key": key_id or ""},
        "active": "audit",
    }


def _before(request: Request) -> int | None:
    before = request.query_params.get("before", "")
    return int(before) if before.isdigit() else None


async def audit_page(request: Request) -> Response:
    if request.query_params.get("view") == "decisions":
        return await decisions_page(request)
    user = await signed_in(request)
    state = app_state(request)
    actor = actor_for(request, user)
    params = request.query_params
    action = params.get("action") or None
    if action not in {name for name, _ in ACTIONS}:
        action = None
    key_id = (params.get("key") or "").strip() or None
    before_id = _before(request)
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
    context = tab("events", events, ACTIONS, action, key_id, before_id)
    return render(request, "audit.html", context, user=user)


async def decisions_page(request: Request) -> Response:
    """A member sees the decisions about one of their own keys at a time; owners and admins, all."""
    user = await signed_in(request)
    state = app_state(request)
    actor = actor_for(request, user)
    key_id = (request.query_params.get("key") or "").strip() or None
    outcome = request.query_params.get("outcome") or None
    if outcome not in {name for name, _ in OUTCOMES}:
        outcome = None
    if key_id is not None:
        await key_actions.load_key(state, actor, key_id)  # 404 for a key the user may not see
    decisions: list[Any] = []
    before_id = _before(request)
    if key_id is not None or actor.own_keys_of is None:
        async with state.sessions() as session:
            decisions = await list_decisions(
                session,
                organization_id=user.organization_id,
                limit=PAGE_SIZE + 1,
                key_id=key_id,
                outcome=outcome,
                before_id=before_id,
            )
    context = tab("decisions", decisions, OUTCOMES, outcome, key_id, before_id)
    context["needs_key"] = key_id is None and actor.own_keys_of is not None
    return render(request, "audit_decisions.html", context, user=user)
