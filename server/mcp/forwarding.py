"""Requests for a legacy MCP session owned by another replica are relayed to that replica.

A load balancer without stickiness may send any request of a session anywhere; the session's
server loop lives in the replica that answered its ``initialize``. Here the request is passed
on to that owner unchanged (same credentials — the owner authenticates it again — same Host),
and its answer is streamed back as it arrives, SSE included, until either side closes. A
request for another key's session, or for a session whose owner cannot be reached (it died),
is not relayed: the local transport then answers 404 and the client re-initializes.
"""

from __future__ import annotations

import logging

import anyio
import httpx
from starlette.types import Message, Receive, Scope, Send

from auth.errors import PayloadTooLarge
from auth.principal import Principal
from auth.relay import RELAY_SIGNATURE, RelaySigner
from server.mcp.owners import SessionOwners

logger = logging.getLogger(__name__)
FORWARDED_BY = b"capgate-forwarded-by"
"""Set on relayed requests: a replica never relays a request twice (no loops)."""
_NOT_RELAYED = frozenset(
    {b"connection", b"keep-alive", b"transfer-encoding", b"te", b"trailer", b"upgrade", b"content-length"}
)


def header(scope: Scope, name: bytes) -> str | None:
    return next((value.decode("latin-1") for key, value in scope["headers"] if key == name), None)


def replaying(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that first hands over a body already read, then the connection's own messages."""
    pending = [{"type": "http.request", "body": body, "more_body": False}]

    async def replay() -> Message:
        return pending.pop() if pending else await receive()

    return replay


class SessionForwarder:
    def __init__(self, owners: SessionOwners, relay: RelaySigner, *, max_body_bytes: int) -> None:
        self.owners = owners
        self._relay = relay
        self._max_body = max_body_bytes
        self._client = httpx.AsyncClient(
            timeout=httpx.Timeout(connect=2.0, read=None, write=10.0, pool=10.0),
            limits=httpx.Limits(max_connections=200, max_keepalive_connections=50),
        )

    async def aclose(self) -> None:
        await self._client.aclose()

    async def relay(
        self, scope: Scope, receive: Receive, send: Send, session_id: str, principal: Principal
    ) -> Receive | None:
        """Answers the request through the session's owner (None), or hands back the ``receive`` to
        answer it here with, when the session is not another live replica's."""
        if header(scope, FORWARDED_BY) is not None:
            return receive
        owner = await self.owners.owner(session_id)
        if owner is None or owner.url == self.owners.self_url or owner.key_id != principal.key_id:
            return receive
        body = await self._read_body(receive)
        path = scope.get("raw_path") or scope["path"].encode()
        query = scope.get("query_string", b"")
        url = owner.url + path.decode("latin-1") + (f"?{query.decode('latin-1')}" if query else "")
        headers = [(k, v) for k, v in scope["headers"] if k not in _NOT_RELAYED and k != RELAY_SIGNATURE]
        headers.append((FORWARDED_BY, self.owners.self_url.encode()))
        headers.append((RELAY_SIGNATURE, self._relay.sign(scope)))  # counted here: the owner must not count it
        request = self._client.build_request(scope["method"], url, headers=headers, content=body)
        try:
            response = await self._client.send(request, stream=True)
        except (httpx.ConnectError, httpx.ConnectTimeout):
            logger.info("owner %s of MCP session %s is gone; the session ended with it", owner.url, session_id[:12])
            await self.owners.release(session_id)
            return replaying(body, receive)
        except httpx.TransportError:  # e.g. a pooled connection the owner closed: answered here as unknown (404)
            logger.warning("could not relay a request to %s", owner.url, exc_info=True)
            return replaying(body, receive)
        try:
            await self._stream_back(response, receive, send)
        finally:
            with anyio.CancelScope(shield=True):
                await response.aclose()
        return None

    async def _read_body(self, receive: Receive) -> bytes:
        body = bytearray()
        more = True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                break
            body += message.get("body", b"")
            more = message.get("more_body", False)
            if len(body) > self._max_body:
                raise PayloadTooLarge(f"Request body is larger than {self._max_body} bytes")
        return bytes(body)

    async def _stream_back(self, response: httpx.Response, receive: Receive, send: Send) -> None:
        headers = [(k.lower(), v) for k, v in response.headers.raw if k.lower() not in _NOT_RELAYED]
        await send({"type": "http.response.start", "status": response.status_code, "headers": headers})
        disconnected = False

        async def until_disconnect(scope: anyio.CancelScope) -> None:
            nonlocal disconnected
            message: Message = {"type": ""}
            while message["type"] != "http.disconnect":
                message = await receive()
            disconnected = True
            scope.cancel()

        async with anyio.create_task_group() as tasks:
            tasks.start_soon(until_disconnect, tasks.cancel_scope)
            try:
                async for chunk in response.aiter_raw():
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
            except (httpx.ReadError, httpx.RemoteProtocolError):
                logger.info("owner of an MCP session closed its answer early")
            tasks.cancel_scope.cancel()
        if not disconnected:
            await send({"type": "http.response.body", "body": b"", "more_body": False})
