"""Runtime REST API: tool invocation and sessions (DESIGN §6)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import anyio
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from auth.errors import InvalidRequest
from server.observability.observed import observed, route_template
from server.routes.bodies import read_model
from server.routes.capability_documents import capabilities_document
from server.routes.params import ascii_int
from server.routes.runtime_wire import InvokeBody, SessionCreateBody, invocation_public, session_public
from server.state import app_state

MAX_PAGE_SIZE = 100


def wants_background(request: Request) -> bool:
    """``Prefer: respond-async`` (RFC 7240): answer 202 at once and keep running after the caller leaves."""
    preferences = request.headers.get("prefer", "").lower().replace(",", ";").split(";")
    return "respond-async" in (item.strip() for item in preferences)


async def while_caller_connected(request: Request, call: Callable[[], Awaitable[Response]]) -> Response:
    """Runs ``call``; if the client disconnects first, cancels it (the execution ends `interrupted`)."""
    answer: Response = Response(status_code=499)  # nobody reads it: the client is gone
    failure: Exception | None = None
    async with anyio.create_task_group() as tasks:

        async def cancel_when_gone() -> None:
            # The body is read: by the ASGI spec the next message is the disconnect, whenever it comes. A server
            # that sends anything else is not watched further (looping on it would spin the event loop).
            if (await request.receive())["type"] == "http.disconnect":
                tasks.cancel_scope.cancel()

        tasks.start_soon(cancel_when_gone)
        try:
            answer = await call()
        except Exception as error:  # raised as itself, not inside an exception group, for the error handlers
            failure = error
        tasks.cancel_scope.cancel()
    if failure is not None:
        raise failure
    return answer


async def _invoke(request: Request, tool_name: str, session_id: str | None) -> Response:
    state = app_state(request)
    body = await read_model(request, InvokeBody, state.settings.max_request_body_bytes)
    background = wants_background(request)

    async def call() -> Response:
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
            background=background,
        )
        if not background:
            return JSONResponse(invocation_public(result))
        events = f"{state.public_base_url}/api/runtime/executions/{result.execution_id}/events"
        return JSONResponse(
            {**invocation_public(result), "eventsUrl": events},
            status_code=202,
            headers={"Preference-Applied": "respond-async"},
        )

    return await call() if background else await while_caller_connected(request, call)


async def invoke(request: Request) -> Response:
    return await _invoke(request, request.path_params["tool_name"], None)


async def session_invoke(request: Request) -> Response:
    return await _invoke(request, request.path_params["tool_name"], request.path_params["session_id"])


async def create_session(request: Request) -> JSONResponse:
    state = app_state(request)
    body = await read_model(request, SessionCreateBody, state.settings.max_request_body_bytes)
    row = await state.runtime.create_session(request.user, title=body.title, interaction_mode=body.interactionMode)
    return JSONResponse(session_public(row), status_code=201)


def _page_size(request: Request) -> int:
    raw = request.query_params.get("limit", "20")
    value = ascii_int(raw, minimum=1, maximum=MAX_PAGE_SIZE)
    if value is None:
        raise InvalidRequest("Invalid limit", details={"limit": f"an integer from 1 to {MAX_PAGE_SIZE}"})
    return value


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
