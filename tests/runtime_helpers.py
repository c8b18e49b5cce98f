"""Helpers for Runtime API tests: calls through real HTTP and parsing of event streams."""

from __future__ import annotations

import json
from typing import Any

import httpx


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
