"""An official MCP client (legacy mode) that follows the spec's rule when its session is gone.

The spec (2025-06-18 / 2025-11-25, Streamable HTTP, session management): a client that gets 404 for
a request carrying an ``Mcp-Session-Id`` must start a new session with a new ``initialize``. Neither
the official SDK (mcp 2.3: ``mcp/client/streamable_http.py`` turns the 404 into a JSON-RPC error —
the server's own error body, or "Session terminated" — and keeps the dead id) nor fastmcp (4.1: it
uses that transport and retries nothing) does so by itself, so tests wrap the official client: on an
error whose HTTP answer was 404 for the session id in use, drop the client (and its id), connect and
initialize again, and retry the request once.
"""

from __future__ import annotations

import contextlib
from contextlib import AsyncExitStack
from typing import Any

import httpx2
from mcp import Client, MCPError
from mcp.client.streamable_http import streamable_http_client

from tests.mcp_helpers import credential_headers


class ReinitializingClient:
    def __init__(self, url: str, key: str, *, style: str = "bearer") -> None:
        self.url = url
        self._headers = credential_headers(key, style)
        self.session_id: str | None = None
        self.reinitialized = 0
        self._gone = False
        self._stack = AsyncExitStack()
        self.client: Client | None = None

    async def __aenter__(self) -> ReinitializingClient:
        await self._connect()
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self._stack.aclose()

    async def _saw(self, response: httpx2.Response) -> None:
        sent = response.request.headers.get("mcp-session-id")
        if response.status_code == 404 and sent is not None and sent == self.session_id:
            self._gone = True
        elif "mcp-session-id" in response.headers:
            self.session_id = response.headers["mcp-session-id"]

    async def _connect(self) -> None:
        self._stack = AsyncExitStack()
        self._gone, self.session_id = False, None
        http = httpx2.AsyncClient(
            headers=self._headers, timeout=httpx2.Timeout(30, read=60), event_hooks={"response": [self._saw]}
        )
        await self._stack.enter_async_context(http)
        transport = streamable_http_client(self.url, http_client=http)
        self.client = await self._stack.enter_async_context(Client(transport, mode="legacy"))

    async def _reconnect(self) -> None:
        with contextlib.suppress(Exception):  # the old session is gone: closing it may fail, and that is fine
            await self._stack.aclose()
        self.reinitialized += 1
        await self._connect()

    async def call_tool(self, name: str, arguments: dict[str, Any]) -> Any:
        assert self.client is not None
        try:
            return await self.client.call_tool(name, arguments)
        except MCPError:
            if not self._gone:
                raise
        await self._reconnect()
        return await self.client.call_tool(name, arguments)
