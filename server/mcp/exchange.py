"""One stateless JSON-RPC exchange, answered the way the SDK's single-exchange entry answers it.

The answer is JSON with the status the SDK maps the JSON-RPC error code to. A call that stays silent
for ``PING_SECONDS`` commits the response to SSE instead and pings until the answer comes (a proxy's
idle-read timeout must not cut a long tool call), then sends the answer as the stream's one event.
A client that disconnects cancels the call, as it does on the SDK's path.
"""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import anyio
from mcp.server.runner import modern_error_data
from mcp.shared.inbound import ERROR_CODE_HTTP_STATUS
from mcp_types import JSONRPCError
from starlette.types import Receive, Scope, Send

from server.observability.mcp import McpObservation

PING_SECONDS = 15.0  # the SDK's _SSE_PING_INTERVAL
SSE_HEADERS = [
    (b"content-type", b"text/event-stream"),
    (b"cache-control", b"no-cache, no-transform"),
    (b"connection", b"keep-alive"),
    (b"x-accel-buffering", b"no"),
]
SSE_PING = {"type": "http.response.body", "body": b": ping\r\n\r\n", "more_body": True}
Answer = Callable[[], Awaitable[tuple[bytes, bool]]]
"""The encoded JSON-RPC ``result`` and whether it reports a tool error."""


def encode(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


@dataclass(slots=True)
class Exchange:
    method: str
    request_id: str | int
    params: Mapping[str, Any]
    scope: Scope
    receive: Receive
    send: Send
    sse: bool = False
    disconnected: bool = False

    async def watch(self, cancel: anyio.CancelScope) -> None:
        """Cancels the call when the client goes away; keeps a silent response alive over SSE."""
        while True:
            with anyio.move_on_after(PING_SECONDS) as silence:
                message = await self.receive()
            if not silence.cancelled_caught:
                if message["type"] == "http.disconnect":
                    self.disconnected = True
                    cancel.cancel()
                    return
                continue
            with anyio.CancelScope(shield=True):  # never leave half a frame on the wire
                if not self.sse:
                    self.sse = True
                    await self.send({"type": "http.response.start", "status": 200, "headers": SSE_HEADERS})
                await self.send(SSE_PING)

    async def answer_with(self, answer: Answer, observation: McpObservation) -> None:
        started = time.perf_counter()
        observation.decide_method(self.scope, self.method)
        message: bytes | None = None
        status, error_type = 200, ""
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(self.watch, tasks.cancel_scope)
            try:
                result, tool_error = await answer()
            except Exception as exc:  # the SDK's exception-to-wire boundary for a modern request
                error = modern_error_data(exc)
                status, error_type = ERROR_CODE_HTTP_STATUS.get(error.code, 200), str(error.code)
                wire = JSONRPCError(jsonrpc="2.0", id=self.request_id, error=error)
                message = json.dumps(
                    wire.model_dump(mode="json", by_alias=True, exclude_none=True), separators=(",", ":")
                ).encode()
            else:
                error_type = "tool_error" if tool_error else ""
                message = (
                    b'{"jsonrpc":"2.0","id":' + json.dumps(self.request_id).encode() + b',"result":' + result + b"}"
                )
            tasks.cancel_scope.cancel()
        if self.disconnected or message is None:
            return
        observation.done(self.method, self.params, error_type, started)
        if self.sse:
            event = b"event: message\r\ndata: " + message + b"\r\n\r\n"
            await self.send({"type": "http.response.body", "body": event, "more_body": False})
            return
        headers = [(b"content-length", str(len(message)).encode()), (b"content-type", b"application/json")]
        await self.send({"type": "http.response.start", "status": status, "headers": headers})
        await self.send({"type": "http.response.body", "body": message, "more_body": False})
