"""Stateless tools/call: Mcp-Param-* headers are checked against the schema of a tool the caller sees, only."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from pydantic import BaseModel, Field
from starlette.applications import Starlette

from server.app import create_app
from tests.conftest import migrate
from tests.helpers import KeyFactory, make_settings
from tools.registry import Tool, ToolRegistry

VERSION = "2026-07-28"


class RegionInput(BaseModel):
    region: str = Field(json_schema_extra={"x-mcp-header": "Region"})


async def handler(_ctx: Any, args: RegionInput) -> dict[str, str]:
    return {"region": args.region}


TOOLS = [
    Tool(name="region_read", description="read", input_model=RegionInput, handler=handler, read_only=True),
    Tool(name="region_write", description="write", input_model=RegionInput, handler=handler),
]


@pytest.fixture
async def app(tmp_path: Path) -> AsyncIterator[Starlette]:
    settings = make_settings(tmp_path, f"sqlite+aiosqlite:///{tmp_path / 'c.db'}", allowed_hosts=["capgate.test"])
    await migrate(settings.resolved_database_url)
    application = create_app(settings, tools=ToolRegistry(TOOLS))
    async with LifespanManager(application):
        yield application


async def call(app: Starlette, key: str, tool: str, region: str, header: str) -> httpx.Response:
    meta = {
        "io.modelcontextprotocol/protocolVersion": VERSION,
        "io.modelcontextprotocol/clientCapabilities": {},
    }
    body = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "tools/call",
        "params": {"name": tool, "arguments": {"region": region}, "_meta": meta},
    }
    headers = {
        "x-api-key": key,
        "accept": "application/json, text/event-stream",
        "content-type": "application/json",
        "mcp-protocol-version": VERSION,
        "mcp-method": "tools/call",
        "mcp-name": tool,
        "mcp-param-region": header,
    }
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://capgate.test") as http:
        return await http.post("/mcp", content=json.dumps(body), headers=headers)


async def test_a_matching_header_is_accepted_and_a_contradicting_one_refused(app: Starlette, keys: KeyFactory) -> None:
    key = await keys.key(await keys.organization(), scopes=["runtime:read"])
    accepted = await call(app, key, "region_read", "eu", "eu")
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["result"]["structuredContent"] == {"region": "eu"}
    refused = await call(app, key, "region_read", "eu", "us")
    assert refused.status_code == 400
    assert "Mcp-Param-Region" in refused.text


async def test_a_hidden_tool_answers_unknown_whatever_the_headers(app: Starlette, keys: KeyFactory) -> None:
    key = await keys.key(await keys.organization(), scopes=["runtime:read"])
    answer = await call(app, key, "region_write", "eu", "us")
    assert answer.status_code == 200, answer.text
    result = answer.json()["result"]
    assert result["isError"] is True
    assert result["content"][0]["text"] == "Unknown tool: region_write"
