"""Resumable legacy SSE streams: event ids, ``retry:``, a priming event, replay after ``Last-Event-ID``.

Each legacy session's transport gets its own ``SessionEvents`` (the SDK shares one store between
all sessions, and names every session's standalone stream alike, so one shared store object would
replay one session's notifications to another). The events themselves are kept in the shared event
store (``event_log.py``, a database table), bounded per stream and per session. A client that
reconnects through the load balancer to another replica is relayed to the session's owner
(``forwarding.py``), whose transport replays from that store.
"""

from __future__ import annotations

import secrets
from collections import OrderedDict, deque
from typing import Any

from mcp.server.streamable_http import GET_STREAM_KEY, EventCallback, EventId, EventStore, StreamId
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from mcp.server.transport_security import TransportSecuritySettings
from mcp_types import JSONRPCMessage
from starlette.types import Message, Send

from auth.dbtypes import utcnow
from server.mcp.event_log import EventLog

RETRY_MILLISECONDS = 1000
"""What SSE clients are told to wait before reconnecting (``retry:``)."""


class SessionEvents(EventStore):
    """The events of one session's streams, stored in the shared event log under unguessable ids."""

    def __init__(self, log: EventLog, session_id: str) -> None:
        self._log = log
        self.session_id = session_id
        self._streams: OrderedDict[StreamId, deque[int]] = OrderedDict()
        """Each stream's stored sequence numbers, oldest stream first (only numbers: the events are in the log)."""
        self._sequence = 0

    async def store_event(self, stream_id: StreamId, message: JSONRPCMessage | None) -> EventId:
        self._sequence += 1
        sequences = self._streams.get(stream_id)
        if sequences is None:
            sequences = self._streams[stream_id] = deque()
            while len(self._streams) > self._log.streams:
                dropped, numbers = self._streams.popitem(last=False)
                self._log.trim(self.session_id, dropped, numbers[-1])
        self._streams.move_to_end(stream_id)
        sequences.append(self._sequence)
        if len(sequences) > self._log.per_stream:
            self._log.trim(self.session_id, stream_id, sequences.popleft())
        event_id = secrets.token_urlsafe(16)
        self._log.append(
            {
                "session_id": self.session_id,
                "sequence": self._sequence,
                "stream_id": stream_id,
                "event_id": event_id,
                "message": None if message is None else message.model_dump_json(by_alias=True, exclude_unset=True),
                "created_at": utcnow(),
            }
        )
        return event_id

    async def replay_events_after(self, last_event_id: EventId, send_callback: EventCallback) -> StreamId | None:
        return await self._log.replay(self.session_id, last_event_id, send_callback)


class ResumableSessionManager(StreamableHTTPSessionManager):
    """The SDK's session manager, with one event store per legacy session."""

    def __init__(
        self, app: Any, *, security_settings: TransportSecuritySettings, events: EventLog, **options: Any
    ) -> None:
        super().__init__(app, security_settings=security_settings, retry_interval=RETRY_MILLISECONDS, **options)
        self.events = events

    def _admit_session(self, requestor: Any) -> Any:
        transport = super()._admit_session(requestor)
        if transport is not None and transport.mcp_session_id is not None:
            # the SDK has no per-session store option
            transport._event_store = SessionEvents(self.events, transport.mcp_session_id)
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
