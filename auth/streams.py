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

from auth.errors import CapgateError, RateLimited, RevokedApiKey, send_error
from auth.observer import NULL_OBSERVER, AuthObserver
from auth.server_timing import ServerTiming


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
    kind: str = "request"


@dataclass
class StreamRegistry:
    max_streams_per_key: int = 50
    max_stream_seconds: float = 3600.0
    observer: AuthObserver = NULL_OBSERVER
    _requests: dict[str, set[TrackedRequest]] = field(default_factory=dict)

    def open_streams(self, key_id: str) -> int:
        return sum(1 for request in self._requests.get(key_id, ()) if request.is_stream)

    def open(self, key_id: str, *, is_stream: bool = False, kind: str = "request") -> TrackedRequest:
        """Registers a request; raises TooManyStreams when the key already holds its limit of streams."""
        if is_stream:
            self._check_room(key_id)
        deadline = (
            anyio.current_time() + self.max_stream_seconds if math.isfinite(self.max_stream_seconds) else math.inf
        )
        request = TrackedRequest(
            key_id=key_id, is_stream=is_stream, scope=anyio.CancelScope(deadline=deadline), kind=kind
        )
        self._requests.setdefault(key_id, set()).add(request)
        if is_stream:
            self.observer.stream_opened(kind)
        return request

    def _check_room(self, key_id: str) -> None:
        if self.open_streams(key_id) >= self.max_streams_per_key:
            raise TooManyStreams(self.max_streams_per_key)

    def become_stream(self, request: TrackedRequest, kind: str) -> None:
        """Counts a request as a stream once its response turns out to be one, whatever the request asked for."""
        if not request.is_stream:
            self._check_room(request.key_id)
            request.is_stream, request.kind = True, kind
            self.observer.stream_opened(kind)

    def close(self, request: TrackedRequest, reason: str = "completed") -> None:
        if request.is_stream:
            self.observer.stream_closed(request.kind, reason)
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


def stream_kind(scope: Scope) -> str:
    return "mcp" if "mcp" in scope["path"] else "execution_events"


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
    timing: ServerTiming | None = None,
) -> str:
    """Runs the request inside its cancel scope and, if it is cut off, still ends the HTTP response properly.

    A response that starts as an event stream is counted as one at that moment; past the key's limit it is
    replaced by the 429 before anything reaches the client, and the handler is cancelled.
    Returns why it ended: completed, client_gone, refused, revoked_terminate or max_lifetime.
    """
    started = finished = False
    is_sse = False
    client_gone = False

    async def watching_receive() -> Message:
        nonlocal client_gone
        message = await receive()
        if message["type"] == "http.disconnect":
            client_gone = True
        return message

    async def tracking_send(message: Message) -> None:
        nonlocal started, finished, is_sse
        if request.refused is not None:
            return
        if message["type"] == "http.response.start":
            is_sse = is_event_stream_response(message)
            if is_sse:
                try:
                    registry.become_stream(request, stream_kind(scope))
                except TooManyStreams as refused:
                    request.refused = refused
                    request.scope.cancel()
                    return
            if timing is not None:
                message["headers"] = [*message.get("headers", ()), timing.header()]
            started = True
        elif message["type"] == "http.response.body" and not message.get("more_body", False):
            finished = True
        await send(message)

    with request.scope:
        await app(scope, watching_receive, tracking_send)
    if request.refused is not None:
        await send_error(send, request.refused, jsonrpc=jsonrpc)
        return "refused"
    if not request.scope.cancelled_caught or finished:
        return "client_gone" if client_gone and not finished else "completed"
    reason: CapgateError = RevokedApiKey() if request.terminated else StreamTimeLimit()
    ended = "revoked_terminate" if request.terminated else "max_lifetime"
    if not started:
        await send_error(send, reason, jsonrpc=jsonrpc)
        return ended
    final = _final_sse_event(reason, jsonrpc=jsonrpc) if is_sse else b""
    await send({"type": "http.response.body", "body": final, "more_body": False})
    return ended
