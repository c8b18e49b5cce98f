"""Every authenticated request runs in a cancel scope registered under its key id.

That one mechanism gives three things: the per-key limit on open streams, the
``max_stream_seconds`` bound on any request, and the kill switch that closes a leaked
key's open requests (``terminate``) — in every replica, because the trigger also
travels through the database (see ``auth/watcher.py``).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field

import anyio
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from auth.errors import CapgateError, RateLimited, RevokedApiKey


class TooManyStreams(RateLimited):
    code = "too_many_streams"

    def __init__(self, limit: int) -> None:
        super().__init__(f"Too many open streams for this API key (limit {limit})", headers={"Retry-After": "1"})


@dataclass(eq=False)
class TrackedRequest:
    key_id: str
    is_stream: bool
    scope: anyio.CancelScope
    terminated: bool = False
    refused: TooManyStreams | None = None


@dataclass
class StreamRegistry:
    max_streams_per_key: int = 50
    max_stream_seconds: float = 3600.0
    _requests: dict[str, set[TrackedRequest]] = field(default_factory=dict)

    def open_streams(self, key_id: str) -> int:
        return sum(1 for request in self._requests.get(key_id, ()) if request.is_stream)

    def open(self, key_id: str, *, is_stream: bool = False) -> TrackedRequest:
        """Registers a request; raises TooManyStreams when the key already holds its limit of streams."""
        if is_stream:
            self._check_room(key_id)
        deadline = (
            anyio.current_time() + self.max_stream_seconds if math.isfinite(self.max_stream_seconds) else math.inf
        )
        request = TrackedRequest(key_id=key_id, is_stream=is_stream, scope=anyio.CancelScope(deadline=deadline))
        self._requests.setdefault(key_id, set()).add(request)
        return request

    def _check_room(self, key_id: str) -> None:
        if self.open_streams(key_id) >= self.max_streams_per_key:
            raise TooManyStreams(self.max_streams_per_key)

    def become_stream(self, request: TrackedRequest) -> None:
        """Counts a request as a stream once its response turns out to be one, whatever the request asked for."""
        if not request.is_stream:
            self._check_room(request.key_id)
            request.is_stream = True

    def close(self, request: TrackedRequest) -> None:
        requests = self._requests.get(request.key_id)
        if requests is not None:
            requests.discard(request)
            if not requests:
                del self._requests[request.key_id]

    def terminate(self, key_id: str) -> int:
        """Cancels every open request of the key; returns how many there were."""
        requests = list(self._requests.get(key_id, ()))
        for request in requests:
            request.terminated = True
            request.scope.cancel()
        return len(requests)


class StreamTimeLimit(CapgateError):
    status = 504
    code = "stream_time_limit"
    message = "Stream reached its time limit"


def is_event_stream_response(message: Message) -> bool:
    """What counts toward the stream limit is what the response is, never what the request's Accept asked for."""
    return any(
        name.lower() == b"content-type" and value.lower().startswith(b"text/event-stream")
        for name, value in message.get("headers", ())
    )


def _final_sse_event(error: CapgateError, *, jsonrpc: bool) -> bytes:
    payload = error.jsonrpc_body() if jsonrpc else error.body()
    event = "message" if jsonrpc else "error"
    return f"event: {event}\ndata: {json.dumps(payload)}\n\n".encode()


async def run_tracked(
    app: ASGIApp,
    scope: Scope,
    receive: Receive,
    send: Send,
    request: TrackedRequest,
    *,
    jsonrpc: bool,
    registry: StreamRegistry,
) -> None:
    """Runs the request inside its cancel scope and, if it is cut off, still ends the HTTP response properly.

    A response that starts as an event stream is counted as one at that moment; past the key's limit it is
    replaced by the 429 before anything reaches the client, and the handler is cancelled.
    """
    started = finished = False
    is_sse = False

    async def tracking_send(message: Message) -> None:
        nonlocal started, finished, is_sse
        if request.refused is not None:
            return
        if message["type"] == "http.response.start":
            is_sse = is_event_stream_response(message)
            if is_sse:
                try:
                    registry.become_stream(request)
                except TooManyStreams as refused:
                    request.refused = refused
                    request.scope.cancel()
                    return
            started = True
        elif message["type"] == "http.response.body" and not message.get("more_body", False):
            finished = True
        await send(message)

    with request.scope:
        await app(scope, receive, tracking_send)
    if request.refused is not None:
        status, headers, body = request.refused.render(jsonrpc=jsonrpc)
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})
        return
    if not request.scope.cancelled_caught or finished:
        return
    reason: CapgateError = RevokedApiKey() if request.terminated else StreamTimeLimit()
    if not started:
        status, headers, body = reason.render(jsonrpc=jsonrpc)
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})
        return
    final = _final_sse_event(reason, jsonrpc=jsonrpc) if is_sse else b""
    await send({"type": "http.response.body", "body": final, "more_body": False})
