"""A request body must arrive within ``body_read_timeout_seconds`` of the request's start.

Pure ASGI: it wraps ``receive`` for the app. A body still incomplete at the deadline gets 408
``request_timeout`` (when no response has started) and the app sees a disconnect, so whatever was
reading the body stops; uvicorn then closes the connection because the body was never read to its end.
Once the body is complete, ``receive`` is passed through untouched (streams wait on it for the
client's disconnect for as long as they run).
"""

from __future__ import annotations

import anyio
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from auth.errors import CapgateError, send_error


class RequestTimeout(CapgateError):
    status = 408
    code = "request_timeout"
    message = "Request body was not received in time"


class BodyDeadlineMiddleware:
    def __init__(self, app: ASGIApp, *, timeout: float) -> None:
        self.app = app
        self.timeout = timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        deadline = anyio.current_time() + self.timeout
        body_done = started = timed_out = False

        async def bounded_receive() -> Message:
            nonlocal body_done, timed_out
            if body_done or timed_out:
                return await receive() if body_done else {"type": "http.disconnect"}
            with anyio.move_on_after(max(0.0, deadline - anyio.current_time())):
                message = await receive()
                if message["type"] != "http.request" or not message.get("more_body", False):
                    body_done = True
                return message
            timed_out = True
            if not started:
                await send_error(guarded_send, RequestTimeout())
            return {"type": "http.disconnect"}

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                if started:
                    return  # the 408 went first; the app's own answer has nowhere to go
                started = True
            await send(message)

        async def app_send(message: Message) -> None:
            if timed_out:
                return
            await guarded_send(message)

        await self.app(scope, bounded_receive, app_send)
