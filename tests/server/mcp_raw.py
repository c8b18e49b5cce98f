"""Raw stateless (2026-07-28) MCP requests over httpx, for tests that need to set ``_meta`` or headers exactly."""

from __future__ import annotations

import json
from typing import Any

import httpx
from starlette.applications import Starlette

VERSION = "2026-07-28"


async def mcp_call(
    app: Starlette,
    key: str | None,
    method: str,
    params: dict[str, Any] | None = None,
    *,
    meta: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    full_meta = {
        "io.modelcontextprotocol/protocolVersion": VERSION,
        "io.modelcontextprotocol/clientCapabilities": {},
        **(meta or {}),
    }
    body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": {**(params or {}), "_meta": full_meta}}
    sent = {
        "accept": "application/json, text/event-stream",
        "content-type": "application/json",
        "mcp-protocol-version": VERSION,
        "mcp-method": method,
        **({"x-api-key": key} if key else {}),
        **(headers or {}),
    }
    if method == "tools/call" and params:
        sent["mcp-name"] = params["name"]
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://capgate.test") as http:
        return await http.post("/mcp", content=json.dumps(body), headers=sent)
