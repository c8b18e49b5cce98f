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
from server.routes.runtime_wire import event_public, execution_public
from server.runtime import store as runtime_store
from server.runtime.live import EventRecord
from server.state import AppState, app_state


async def get_execution(request: Request) -> JSONResponse:
    state = app_state(request)
    async with state.sessions() as session:
        row = await runtime_store.get_execution(
            session, organization_id=request.user.organization_id, execution_id=request.path_params["execution_id"]
        )
    return JSONResponse(execution_public(row))


def _last_event_id(request: Request) -> int:
    raw = request.headers.get("last-event-id", "").strip()
    if not raw:
        return 0
    if not raw.isdigit() or len(raw) > 12:
        raise InvalidRequest("Invalid Last-Event-ID", details={"Last-Event-ID": "an event id from this stream"})
    return int(raw)


async def _stored_events(state: AppState, execution_id: str, after: int) -> list[EventRecord] | None:
    """The stored events after ``after``; None when there are none and none will come (the execution finished)."""
    async with state.sessions() as session:
        events = await runtime_store.load_events(session, execution_id=execution_id, after=after)
        if not events and await runtime_store.execution_finished(session, execution_id=execution_id):
            return None
    return events


async def follow(state: AppState, execution_id: str, after: int) -> AsyncIterator[EventRecord]:
    """Every event after ``after``, up to and including the terminal one; nothing once that has been sent."""
    while True:
        live = state.runtime.live.get(execution_id)
        if live is None:
            stored = await _stored_events(state, execution_id, after)
            if stored is None:  # resumed at or after the final event
                return
            events = stored
        else:
            events = live.after(after)
        for event in events:
            yield event
            after = event.seq
            if event.terminal:
                return
        if live is not None:
            await live.wait_for_events_after(after, state.settings.sse_heartbeat_seconds)
        else:
            await state.runtime.live.wait_elsewhere(execution_id, state.settings.execution_poll_seconds)


async def execution_events(request: Request) -> EventSourceResponse:
    state = app_state(request)
    execution_id = request.path_params["execution_id"]
    after = _last_event_id(request)
    live = state.runtime.live.get(execution_id)
    if live is None or live.organization_id != request.user.organization_id:  # a short call may not be written yet
        async with state.sessions() as session:
            await runtime_store.get_execution(
                session, organization_id=request.user.organization_id, execution_id=execution_id
            )

    async def stream() -> AsyncIterator[dict[str, Any]]:
        async for event in follow(state, execution_id, after):
            yield {
                "id": str(event.seq),
                "event": event.type,
                "data": json.dumps(event_public(execution_id, event), separators=(",", ":")),
            }

    return EventSourceResponse(
        stream(), ping=state.settings.sse_heartbeat_seconds, headers={"Cache-Control": "no-store"}
    )
