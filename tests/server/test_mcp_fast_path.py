"""The native stateless path answers exactly what the SDK answers: the same requests, down both paths, compared.

Two apps share one database and one pepper: one with ``mcp_fast_path`` on (the default), one with it
off (every request through the SDK). Execution and session ids differ between the two answers by
nature; everything else a client can see — status, content type, the JSON-RPC body — must not.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from pydantic import BaseModel
from starlette.applications import Starlette

from server.app import create_app
from server.mcp import exchange
from server.mcp.endpoint import McpEndpoint
from server.mcp.stateless import StatelessFastPath
from server.state import AppState
from tests.conftest import migrate
from tests.helpers import KeyFactory, make_settings
from tests.server.mcp_raw import VERSION
from tools.registry import Tool, ToolRegistry


class PathInput(BaseModel):
    path: str


class NapInput(BaseModel):
    seconds: float


async def write_handler(_ctx: Any, args: PathInput) -> dict[str, str]:
    return {"wrote": args.path}


async def broken_handler(_ctx: Any, args: PathInput) -> dict[str, str]:
    raise RuntimeError("disk on fire")


async def nap_handler(_ctx: Any, args: NapInput) -> str:
    await asyncio.sleep(args.seconds)
    return "rested"


TOOLS = [
    Tool(name="memory_read", description="read", input_model=PathInput, handler=write_handler, read_only=True),
    Tool(name="memory_write", description="write", input_model=PathInput, handler=write_handler, destructive=True),
    Tool(name="broken", description="always fails", input_model=PathInput, handler=broken_handler),
    Tool(name="nap", description="sleeps", input_model=NapInput, handler=nap_handler, read_only=True),
]
VOLATILE_META = ("executionId", "sessionId", "eventsUrl")


class Spy:
    """Counts how the fast path dealt with each request: answered itself, or handed to the SDK."""

    def __init__(self, endpoint: McpEndpoint) -> None:
        assert endpoint.fast_path is not None
        self.inner: StatelessFastPath = endpoint.fast_path
        self.answered = self.handed_back = 0
        self.max_body = self.inner.max_body
        endpoint.fast_path = self  # type: ignore[assignment]

    async def __call__(self, *args: Any) -> Any:
        outcome = await self.inner(*args)
        if outcome is None:
            self.answered += 1
        else:
            self.handed_back += 1
        return outcome


def endpoint_of(app: Starlette) -> McpEndpoint:
    for route in app.routes:
        endpoint = getattr(route, "app", None)
        while endpoint is not None and not isinstance(endpoint, McpEndpoint):
            endpoint = getattr(endpoint, "app", None)
        if isinstance(endpoint, McpEndpoint):
            return endpoint
    raise AssertionError("no MCP endpoint mounted")


@pytest.fixture
async def apps(tmp_path: Path) -> AsyncIterator[tuple[Starlette, Starlette]]:
    settings = make_settings(tmp_path, f"sqlite+aiosqlite:///{tmp_path / 'c.db'}")
    await migrate(settings.resolved_database_url)
    fast = create_app(settings, tools=ToolRegistry(TOOLS))
    sdk = create_app(settings.model_copy(update={"mcp_fast_path": False}), tools=ToolRegistry(TOOLS))
    async with LifespanManager(fast), LifespanManager(sdk):
        yield fast, sdk


@pytest.fixture
def keys(apps: tuple[Starlette, Starlette]) -> KeyFactory:
    state: AppState = apps[0].state.capgate
    return KeyFactory(sessions=state.sessions, hasher=state.hasher, verifier=state.verifier)


def request_parts(
    method: str, params: dict[str, Any], *, request_id: Any = 1, headers: dict[str, str] | None = None
) -> tuple[bytes, dict[str, str]]:
    meta = {"io.modelcontextprotocol/protocolVersion": VERSION, "io.modelcontextprotocol/clientCapabilities": {}}
    body = {
        "jsonrpc": "2.0",
        "id": request_id,
        "method": method,
        "params": {**params, "_meta": meta | params.get("_meta", {})},
    }
    sent = {
        "accept": "application/json, text/event-stream",
        "content-type": "application/json",
        "mcp-protocol-version": VERSION,
        "mcp-method": method,
    }
    if isinstance(params.get("name"), str):
        sent["mcp-name"] = params["name"]
    return json.dumps(body).encode(), {**sent, **(headers or {})}


async def post(app: Starlette, key: str, body: bytes, headers: dict[str, str]) -> httpx.Response:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://capgate.test") as http:
        return await http.post("/mcp", content=body, headers={"x-api-key": key, **headers})


def seen_by_client(response: httpx.Response) -> tuple[int, str, Any]:
    content_type = response.headers.get("content-type", "")
    text = response.text
    if content_type.startswith("text/event-stream"):
        data = [line[len("data: ") :] for line in text.splitlines() if line.startswith("data: ")]
        body: Any = [json.loads(item) for item in data]
        pings = text.count(": ping")
        body = {"events": body, "pinged": pings > 0}
    else:
        body = json.loads(text) if text and content_type.startswith("application/json") else text
    for message in body["events"] if isinstance(body, dict) and "events" in body else [body]:
        meta = (message.get("result") or {}).get("_meta", {}) if isinstance(message, dict) else {}
        for volatile in VOLATILE_META:
            if volatile in meta:
                meta[volatile] = "<varies>"
    return response.status_code, content_type, body


async def both(
    apps: tuple[Starlette, Starlette], key: str, body: bytes, headers: dict[str, str]
) -> tuple[tuple[int, str, Any], Spy]:
    fast, sdk = apps
    spy = Spy(endpoint_of(fast))
    answer = seen_by_client(await post(fast, key, body, headers))
    assert answer == seen_by_client(await post(sdk, key, body, headers))
    return answer, spy


async def test_listing_and_calls_match_the_sdk_and_skip_it(apps: tuple[Starlette, Starlette], keys: KeyFactory) -> None:
    org = await keys.organization()
    full = await keys.key(org, scopes=["runtime"])
    narrow = await keys.key(org, scopes=["runtime"], allowed_tools=["memory_read"])
    cases = [
        (full, request_parts("tools/list", {})),
        (narrow, request_parts("tools/list", {})),
        (full, request_parts("tools/call", {"name": "memory_write", "arguments": {"path": "/a.md"}})),
        (full, request_parts("tools/call", {"name": "memory_write", "arguments": {"path": "/a.md"}}, request_id="s-1")),
        (full, request_parts("tools/call", {"name": "memory_write", "arguments": {}})),
        (full, request_parts("tools/call", {"name": "memory_write", "arguments": {"path": 7}})),
        (full, request_parts("tools/call", {"name": "no_such_tool", "arguments": {}})),
        (narrow, request_parts("tools/call", {"name": "memory_write", "arguments": {"path": "/a.md"}})),
        (full, request_parts("tools/call", {"name": "broken", "arguments": {"path": "/a.md"}})),
    ]
    for key, (body, headers) in cases:
        (status, content_type, answer), spy = await both(apps, key, body, headers)
        assert (status, content_type) == (200, "application/json"), answer
        assert spy.answered == 1 and spy.handed_back == 0, body
    listed = seen_by_client(await post(apps[0], narrow, *request_parts("tools/list", {})))[2]
    assert [tool["name"] for tool in listed["result"]["tools"]] == ["memory_read"]


async def test_what_the_fast_path_does_not_vouch_for_goes_to_the_sdk_with_its_body(
    apps: tuple[Starlette, Starlette], keys: KeyFactory
) -> None:
    key = await keys.key(await keys.organization())
    call = {"name": "memory_write", "arguments": {"path": "/a.md"}}
    body, headers = request_parts("tools/call", call)
    handed_back = [
        (b"{not json", headers),
        (body, {**headers, "mcp-name": "memory_read"}),  # header and body disagree
        (request_parts("tools/call", {"arguments": {}})[0], headers),  # no tool name
        (request_parts("tools/call", {**call, "_meta": {"progressToken": 5}})[0], headers),
        (body.replace(b'"jsonrpc": "2.0"', b'"jsonrpc": "2.0", "extra": 1'), headers),
    ]
    for sent, sent_headers in handed_back:
        (status, _, answer), spy = await both(apps, key, sent, sent_headers)
        assert spy.answered == 0 and spy.handed_back == 1, (sent, answer)
    refused_before_the_body = [
        {**headers, "accept": "application/json"},  # the SDK wants both media types: 406
        {**headers, "host": "evil.example"},  # DNS rebinding protection: 421
    ]
    for sent_headers in refused_before_the_body:
        (status, _, _), spy = await both(apps, key, body, sent_headers)
        assert status in (406, 421) and spy.answered == 0


async def test_a_silent_call_turns_into_sse_with_pings_like_the_sdk(
    apps: tuple[Starlette, Starlette], keys: KeyFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mcp.server import _streamable_http_modern

    monkeypatch.setattr(exchange, "PING_SECONDS", 0.05)
    monkeypatch.setattr(_streamable_http_modern, "_SSE_PING_INTERVAL", 0.05)
    key = await keys.key(await keys.organization())
    (status, content_type, answer), spy = await both(
        apps, key, *request_parts("tools/call", {"name": "nap", "arguments": {"seconds": 0.3}})
    )
    assert (status, content_type, spy.answered) == (200, "text/event-stream", 1)
    assert answer["pinged"] and answer["events"][0]["result"]["structuredContent"] == {"result": "rested"}
