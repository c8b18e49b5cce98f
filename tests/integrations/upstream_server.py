"""An upstream MCP server for the integration tests, written with the SDK.

Run over HTTP (``python -m tests.integrations.upstream_server http PORT``) it requires a bearer token
from ``UPSTREAM_TOKENS`` (comma-separated); over stdio (``... stdio``) it reads its token from
``UPSTREAM_TOKEN``. Every tool call is appended to ``UPSTREAM_LOG`` (JSON lines) with the token that
made it, so tests can tell which account reached it; cancellations are logged too.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from contextvars import ContextVar
from typing import Any

import anyio
import mcp_types as types
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.subscriptions import InMemorySubscriptionBus, ServerEvent
from starlette.types import Receive, Scope, Send

_token: ContextVar[str | None] = ContextVar("upstream_token", default=None)


class LoggedBus(InMemorySubscriptionBus):
    """Logs each ``subscriptions/listen`` stream that starts, so a test knows capgate is listening."""

    def subscribe(self, listener: Callable[[ServerEvent], None]) -> Callable[[], None]:
        record("listening", marker="subscriptions/listen")
        return super().subscribe(listener)


server = MCPServer("capgate-test-upstream", log_level="WARNING", subscriptions=LoggedBus())


def record(event: str, **fields: Any) -> None:
    path = os.environ.get("UPSTREAM_LOG")
    if path:
        with open(path, "a") as log:
            log.write(json.dumps({"event": event, "token": current_token(), **fields}) + "\n")


def current_token() -> str | None:
    return _token.get() or os.environ.get("UPSTREAM_TOKEN")


@server.tool(annotations=types.ToolAnnotations(read_only_hint=True))
def whoami() -> str:
    """Says which token called (read-only)."""
    record("call", tool="whoami")
    return f"token={current_token()}"


@server.tool(annotations=types.ToolAnnotations(read_only_hint=False, destructive_hint=False))
def create_note(text: str) -> str:
    """Stores a note (writes)."""
    record("call", tool="create_note", text=text)
    return f"created: {text}"


@server.tool(annotations=types.ToolAnnotations(read_only_hint=True))
def pid() -> int:
    """The upstream's process id (a restarted stdio upstream has a new one)."""
    return os.getpid()


@server.tool()
def crash() -> str:
    """Exits the process at once, as a crashing upstream would."""
    record("call", tool="crash")
    os._exit(3)


@server.tool()
def fail(reason: str) -> str:
    """Always fails with the reason."""
    record("call", tool="fail")
    raise ToolError(reason)


@server.tool()
async def slow_progress(steps: int, ctx: Context) -> str:
    """Reports progress ``steps`` times, then answers."""
    record("call", tool="slow_progress")
    await ctx.info("starting the steps")
    for step in range(1, steps + 1):
        await ctx.report_progress(step, steps, f"step {step}")
        await anyio.sleep(0.05)
    return f"done after {steps} steps"


@server.tool()
async def wait_for_cancel(marker: str) -> str:
    """Waits until cancelled (or 60 s), logging both the start and the cancellation."""
    record("started", tool="wait_for_cancel", marker=marker)
    try:
        await anyio.sleep(60)
    except anyio.get_cancelled_exc_class():
        record("cancelled", tool="wait_for_cancel", marker=marker)
        raise
    return "not cancelled"


@server.tool()
async def gated(marker: str) -> str:
    """Waits until the file ``marker`` exists (max 30 s): lets a test hold a call open."""
    record("started", tool="gated", marker=marker)
    with anyio.move_on_after(30):
        while not os.path.exists(marker):
            await anyio.sleep(0.02)
    return f"released {os.path.basename(marker)}"


@server.tool()
async def add_tool(name: str, ctx: Context) -> str:
    """Adds a tool called ``name`` and tells listeners the tool list changed."""

    def added() -> str:
        return f"{name} was added"

    server.add_tool(added, name=name, description=f"Added at run time: {name}")
    await ctx.notify_tools_changed()
    return f"added {name}"


class RequireToken:
    """Answers 401 to a request without one of the accepted bearer tokens; remembers the token."""

    def __init__(self, app: Any, tokens: set[str]) -> None:
        self.app = app
        self.tokens = tokens

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        header = dict(scope["headers"]).get(b"authorization", b"").decode()
        token = header.removeprefix("Bearer ").strip()
        if token not in self.tokens:
            body = b'{"error": "invalid token"}'
            await send(
                {"type": "http.response.start", "status": 401, "headers": [(b"content-type", b"application/json")]}
            )
            await send({"type": "http.response.body", "body": body})
            return
        reset = _token.set(token)
        try:
            await self.app(scope, receive, send)
        finally:
            _token.reset(reset)


def main() -> None:
    mode = sys.argv[1]
    if mode == "stdio":
        server.run("stdio")
        return
    import uvicorn

    tokens = {token for token in os.environ.get("UPSTREAM_TOKENS", "").split(",") if token}
    app = RequireToken(server.streamable_http_app(), tokens)
    # Open subscriptions/listen streams never end by themselves: shutdown does not wait for them long.
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[2]), log_level="warning", timeout_graceful_shutdown=1)


if __name__ == "__main__":
    main()
