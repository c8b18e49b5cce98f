"""GET /api/audit: the audit log of the caller's organization, newest first."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse

from auth.audit import list_audit_events
from auth.errors import InvalidRequest
from server.routes.key_wire import audit_public
from server.routes.params import MAX_BIGINT, ascii_int
from server.state import app_state

MAX_LIMIT = 500


def positive_int(request: Request, name: str, default: int | None, maximum: int | None = None) -> int | None:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    value = ascii_int(raw, minimum=1, maximum=maximum or MAX_BIGINT)
    if value is None:
        bound = f" between 1 and {maximum}" if maximum else " a positive integer"
        message = f"{name} must be{bound}"
        raise InvalidRequest(message, details={name: message})
    return value


async def list_audit(request: Request) -> JSONResponse:
    limit = positive_int(request, "limit", 100, MAX_LIMIT) or 100
    before = positive_int(request, "before", None)
    async with app_state(request).sessions() as session:
        events = await list_audit_events(
            session,
            organization_id=request.user.organization_id,
            limit=limit,
            action=request.query_params.get("action"),
            key_id=request.query_params.get("keyId"),
            before_id=before,
        )
    return JSONResponse({"events": [audit_public(event) for event in events]})
