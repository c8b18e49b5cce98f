"""Resumable legacy SSE streams: event ids, ``retry:``, a priming event, replay after ``Last-Event-ID``.

Each legacy session's transport gets its own ``SessionEvents`` store (the SDK shares one store
between all sessions, and names every session's standalone stream alike, so a shared store would
replay one session's notifications to another). The store lives as long as the session, in the
replica that owns it; a client that reconnects through the load balancer to another replica is
relayed to that owner (``forwarding.py``), so it resumes from the same store and misses nothing.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from typing import Any

from mcp.server.streamable_http import GET_STREAM_KEY, EventCallback, EventId, EventMessage, EventStore, StreamId
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from mcp.server.transport_security import TransportSecuritySettings
from mcp_types import JSONRPCMessage
from starlette.types import Message, Send

RETRY_MILLISECONDS = 1000
"""What SSE clients are told to wait before reconnecting (``retry:``)."""


class SessionEvents(EventStore):
    """The most recent events of one session's streams (bounded: old streams and events are dropped)."""

    def __init__(self, *, max_streams: int = 64, max_events: int = 256) -> None:
        self._streams: OrderedDict[StreamId, deque[tuple[int, JSONRPCMessage | None]]] = OrderedDict()
        self._max_streams = max_streams
        self._max_events = max_events
        self._sequence = 0

    async def store_event(self, stream_id: StreamId, message: JSONRPCMessage | None) -> EventId:
        self._sequence += 1
        events = self._streams.get(stream_id)
        if events is None:
            events = self._streams[stream_id] = deque(maxlen=self._max_events)
            while len(self._streams) > self._max_streams:
                self._streams.popitem(last=False)
        self._streams.move_to_end(stream_id)
        events.append((self._sequence, message))
        return f"{stream_id}#{self._sequence}"

    async def replay_events_after(self, last_event_id: EventId, send_callback: EventCallback) -> StreamId | None:
        stream_id, _, sequence = last_event_id.rpartition("#")
        events = self._streams.get(stream_id)
        if events is None or not sequence.isdigit():
            return None
        after = int(sequence)
        for number, message in list(events):
            if number > after and message is not None:
                await send_callback(EventMessage(message, f"{stream_id}#{number}"))
        return stream_id


class ResumableSessionManager(StreamableHTTPSessionManager):
    """The SDK's session manager, with one event store per legacy session."""

    def __init__(self, app: Any, *, security_settings: TransportSecuritySettings, **options: Any) -> None:
        super().__init__(app, security_settings=security_settings, retry_interval=RETRY_MILLISECONDS, **options)

    def _admit_session(self, requestor: Any) -> Any:
        transport = super()._admit_session(requestor)
        if transport is not None:
            transport._event_store = SessionEvents()  # the SDK has no per-session store option
        return transport

    def holds(self, session_id: str) -> bool:
        return session_id in self._server_instances

    def session_events(self, session_id: str) -> SessionEvents | None:
        transport = self._server_instances.get(session_id)
        store = getattr(transport, "_event_store", None)
        return store if isinstance(store, SessionEvents) else None


def priming(send: Send, events: SessionEvents) -> Send:
    """Starts a standalone GET stream with a priming event (an id to resume from, and ``retry:``)."""

    async def send_primed(message: Message) -> None:
        await send(message)
        if message["type"] == "http.response.start" and message["status"] == 200:
            event_id = await events.store_event(GET_STREAM_KEY, None)
            primer = f"id: {event_id}\nretry: {RETRY_MILLISECONDS}\ndata: \n\n".encode()
            await send({"type": "http.response.body", "body": primer, "more_body": True})

    return send_primed
