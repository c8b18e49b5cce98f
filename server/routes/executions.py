"""Execution records and their Server-Sent Events stream.

The stream sends the stored events first, then live ones until the terminal event
(`completed`, `failed` or `interrupted`), then ends. Each SSE event's ``id`` is the event's
sequence number within the execution, so ``Last-Event-ID: n`` resumes after event n. An
execution running in this process is followed from memory; one running elsewhere is read
from the database each time that process announces new events (a change notification, on
PostgreSQL), and every ``execution_poll_seconds`` in case a notification was lost. Idle streams get a comment line every
``sse_heartbeat_seconds``. A stream is one HTTP request, authenticated once: revoking its
key does not cut it short (only the kill switch, ``terminateStreams``, or ``max_stream_seconds`` does).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

from sse_starlette import EventSourceResponse
from starlette.requests import Request
from starlette.responses import JSONResponse

from auth.errors import InvalidRequest
from server.routes.params import ascii_int
from server.routes.runtime_wire import event_public, execution_public
from server.state import app_state


async def get_execution(request: Request) -> JSONResponse:
    row = await app_state(request).runtime.get_execution(request.user, request.path_params["execution_id"])
    return JSONResponse(execution_public(row))


def _last_event_id(request: Request) -> int:
    raw = request.headers.get("last-event-id", "").strip()
    if not raw:
        return 0
    value = ascii_int(raw, maximum=10**12 - 1)
    if value is None:
        raise InvalidRequest("Invalid Last-Event-ID", details={"Last-Event-ID": "an event id from this stream"})
    return value


async def execution_events(request: Request) -> EventSourceResponse:
    state = app_state(request)
    execution_id = request.path_params["execution_id"]
    after = _last_event_id(request)
    await state.runtime.check_execution(request.user, execution_id)

    async def stream() -> AsyncIterator[dict[str, Any]]:
        async for event in state.runtime.follow(execution_id, after, heartbeat=state.settings.sse_heartbeat_seconds):
            yield {
                "id": str(event.seq),
                "event": event.type,
                "data": json.dumps(event_public(execution_id, event), separators=(",", ":")),
            }

    return EventSourceResponse(
        stream(), ping=state.settings.sse_heartbeat_seconds, headers={"Cache-Control": "no-store"}
    )
