"""GET /api/audit/decisions and GET /api/keys/{key_id}/explain: the decision log, and a decision asked for."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse

from auth import store
from auth.dbtypes import iso
from auth.errors import InvalidRequest
from server.observability.explain import explain_tool
from server.observability.models import AuthzDecision
from server.observability.queries import aware_time, list_decisions
from server.routes.audit import MAX_LIMIT, positive_int
from server.state import app_state

OUTCOMES = ("allowed", "refused")


def decision_public(row: AuthzDecision) -> dict[str, Any]:
    return {
        "id": row.id,
        "time": iso(row.created_at),
        "requestId": row.request_id,
        "traceId": row.trace_id,
        "keyId": row.key_id,
        "route": row.route,
        "tool": row.tool,
        "outcome": row.outcome,
        "reason": row.reason,
        "rule": row.rule,
        "policyRevision": row.policy_revision,
        "count": row.count,
    }


def _time(request: Request, name: str) -> datetime | None:
    raw = request.query_params.get(name)
    if raw is None:
        return None
    try:
        return aware_time(raw)
    except ValueError:
        message = f"{name} must be an ISO 8601 time"
        raise InvalidRequest(message, details={name: message}) from None


async def list_decisions_route(request: Request) -> JSONResponse:
    limit = positive_int(request, "limit", 100, MAX_LIMIT) or 100
    cursor = positive_int(request, "cursor", None)
    outcome = request.query_params.get("outcome")
    if outcome is not None and outcome not in OUTCOMES:
        message = "outcome must be allowed or refused"
        raise InvalidRequest(message, details={"outcome": message})
    async with app_state(request).sessions() as session:
        rows = await list_decisions(
            session,
            organization_id=request.user.organization_id,
            limit=limit,
            key_id=request.query_params.get("keyId"),
            tool=request.query_params.get("tool"),
            outcome=outcome,
            since=_time(request, "since"),
            until=_time(request, "until"),
            before_id=cursor,
        )
    next_cursor = str(rows[-1].id) if len(rows) == limit else None
    return JSONResponse({"decisions": [decision_public(row) for row in rows], "nextCursor": next_cursor})


async def explain_key(request: Request) -> JSONResponse:
    state = app_state(request)
    tool = request.query_params.get("tool", "").strip()
    if not tool or len(tool) > 200:
        message = "tool must name a tool (1 to 200 characters)"
        raise InvalidRequest(message, details={"tool": message})
    async with state.sessions() as session:
        key = await store.get_api_key(
            session, key_id=request.path_params["key_id"], organization_id=request.user.organization_id
        )
    disabled = await state.runtime.switches.disabled(key.organization_id)
    upstream = {} if tool in state.runtime.tools else await state.integrations.tools(key.organization_id)
    explanation = explain_tool(
        key=key, tool_name=tool, tools=state.runtime.tools, disabled=disabled, now=state.now(), upstream=upstream
    )
    return JSONResponse(explanation.public())
