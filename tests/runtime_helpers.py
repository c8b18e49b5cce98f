"""Helpers for Runtime API tests: calls through real HTTP and parsing of event streams."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import httpx
from asgi_lifespan import LifespanManager
from pydantic import BaseModel

from server.app import create_app
from server.state import AppState
from tests.conftest import migrate
from tests.helpers import KeyFactory, make_settings
from tools.context import ToolContext
from tools.registry import Tool, ToolRegistry


def headers(key: str, **extra: str) -> dict[str, str]:
    return {"x-api-key": key, **extra}


async def invoke(
    client: httpx.AsyncClient, key: str, tool: str, arguments: dict[str, Any] | None = None, **body: Any
) -> httpx.Response:
    extra = body.pop("headers", {})
    payload = {"input": arguments or {}, **body}
    return await client.post(f"/api/runtime/tools/{tool}", json=payload, headers=headers(key, **extra))


def parse_sse(text: str) -> list[dict[str, Any]]:
    """Events of an SSE body: id, event and the parsed data; comment lines (heartbeats) are left out."""
    events = []
    for block in text.replace("\r\n", "\n").split("\n\n"):
        fields: dict[str, Any] = {}
        for line in block.split("\n"):
            if not line or line.startswith(":"):
                continue
            name, _, value = line.partition(":")
            fields[name] = value[1:] if value.startswith(" ") else value
        if "data" in fields:
            fields["data"] = json.loads(fields["data"])
            events.append(fields)
    return events


class Held(BaseModel):
    pass


@dataclass
class HeldTool:
    """A tool that runs until the test releases it; ``started`` tells when (and which execution) it runs."""

    name: str = "hold"
    started: anyio.Event = field(default_factory=anyio.Event)
    release: anyio.Event = field(default_factory=anyio.Event)
    cancelled: anyio.Event = field(default_factory=anyio.Event)
    execution_ids: list[str] = field(default_factory=list)
    result: Any = "released"

    async def handler(self, ctx: ToolContext, _args: Held) -> Any:
        self.execution_ids.append(ctx.execution_id)
        await ctx.progress(1, 2, "holding")
        self.started.set()
        try:
            await self.release.wait()
        except anyio.get_cancelled_exc_class():
            self.cancelled.set()
            raise
        return self.result

    def tool(self) -> Tool:
        return Tool(self.name, "runs until released", Held, self.handler)


@asynccontextmanager
async def app_client(
    data_dir: Path, database_url: str, tools: list[Tool], **overrides: Any
) -> AsyncIterator[tuple[httpx.AsyncClient, KeyFactory, AppState]]:
    """A client of an app serving only ``tools``, with its key factory and state."""
    await migrate(database_url)
    app = create_app(make_settings(data_dir, database_url, **overrides), tools=ToolRegistry(tools))
    async with LifespanManager(app):
        state: AppState = app.state.capgate
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://capgate.test") as http:
            yield http, KeyFactory(sessions=state.sessions, hasher=state.hasher, verifier=state.verifier), state
