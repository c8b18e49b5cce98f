"""Runtime REST API: tool invocation and sessions (DESIGN §6)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse

from auth.errors import InvalidRequest
from server.observability.observed import observed, route_template
from server.routes.bodies import read_model
from server.routes.capability_documents import capabilities_document
from server.routes.runtime_wire import InvokeBody, SessionCreateBody, invocation_public, session_public
from server.state import app_state

MAX_PAGE_SIZE = 100


async def _invoke(request: Request, tool_name: str, session_id: str | None) -> JSONResponse:
    state = app_state(request)
    body = await read_model(request, InvokeBody, state.settings.max_request_body_bytes)
    result = await state.runtime.invoke(
        request.user,
        tool_name,
        body.input,
        session_id=session_id if session_id is not None else body.sessionId,
        connected_account_id=body.connectedAccountId,
        idempotency_key=request.headers.get("idempotency-key"),
        source="api",
        observation=observed(request.scope),
        route=f"POST {route_template(request.scope)}",
    )
    return JSONResponse(invocation_public(result))


async def invoke(request: Request) -> JSONResponse:
    return await _invoke(request, request.path_params["tool_name"], None)


async def session_invoke(request: Request) -> JSONResponse:
    return await _invoke(request, request.path_params["tool_name"], request.path_params["session_id"])


async def create_session(request: Request) -> JSONResponse:
    state = app_state(request)
    body = await read_model(request, SessionCreateBody, state.settings.max_request_body_bytes)
    row = await state.runtime.create_session(request.user, title=body.title, interaction_mode=body.interactionMode)
    return JSONResponse(session_public(row), status_code=201)


def _page_size(request: Request) -> int:
    raw = request.query_params.get("limit", "20")
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_PAGE_SIZE:
        raise InvalidRequest("Invalid limit", details={"limit": f"an integer from 1 to {MAX_PAGE_SIZE}"})
    return int(raw)


async def list_sessions(request: Request) -> JSONResponse:
    state = app_state(request)
    status = request.query_params.get("status")
    if status is not None and status not in ("active", "archived"):
        raise InvalidRequest("Invalid status", details={"status": "active or archived"})
    rows, next_cursor = await state.runtime.list_sessions(
        request.user, limit=_page_size(request), cursor=request.query_params.get("cursor") or None, status=status
    )
    return JSONResponse({"sessions": [session_public(row) for row in rows], "nextCursor": next_cursor})


async def get_session(request: Request) -> JSONResponse:
    row = await app_state(request).runtime.get_session(request.user, request.path_params["session_id"])
    return JSONResponse(session_public(row))


async def archive_session(request: Request) -> JSONResponse:
    row = await app_state(request).runtime.archive_session(request.user, request.path_params["session_id"])
    return JSONResponse(session_public(row))


async def session_capabilities(request: Request) -> JSONResponse:
    state = app_state(request)
    row = await state.runtime.get_session(request.user, request.path_params["session_id"])
    document = capabilities_document(await state.runtime.visible_tools(request.user), state.public_base_url)
    return JSONResponse({**document, "session": session_public(row)})
