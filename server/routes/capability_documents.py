"""The capabilities document (the tools a key may use and the Runtime API's URL templates), and its cache."""

from __future__ import annotations

from typing import Any

from starlette.responses import JSONResponse

from tools.registry import Tool


def tool_capability(tool: Tool) -> dict[str, Any]:
    return {
        "name": tool.name,
        "kind": tool.kind,
        "description": tool.description,
        "parameters": tool.parameters,
        "isReadOnly": tool.read_only,
        "supportsIdempotency": tool.idempotent,
        "accounts": [account.public() for account in tool.accounts],
    }


def capabilities_document(tools: list[Tool], base_url: str) -> dict[str, Any]:
    runtime = f"{base_url}/api/runtime"
    return {
        "capabilities": [tool_capability(tool) for tool in tools],
        "sessionCreateUrl": f"{runtime}/sessions",
        "toolInvokeUrlTemplate": f"{runtime}/tools/{{toolName}}",
        "sessionToolInvokeUrlTemplate": f"{runtime}/sessions/{{sessionId}}/tools/{{toolName}}",
        "executionEventsUrlTemplate": f"{runtime}/executions/{{executionId}}/events",
    }


class EncodedDocuments:
    """Serialized capabilities documents per base URL and list of visible tools.

    The document depends on nothing else, and encoding it was the largest single cost of a
    warm GET /capabilities (bench/results/README.md). Tools are immutable; an entry keeps
    its tools alive, so their ids in the key cannot be reused while it exists.
    """

    def __init__(self, size: int = 256) -> None:
        self._size = size
        self._entries: dict[tuple[str, tuple[int, ...]], tuple[tuple[Tool, ...], bytes]] = {}

    def get(self, tools: list[Tool], base_url: str) -> bytes:
        key = (base_url, tuple(map(id, tools)))
        entry = self._entries.get(key)
        if entry is None:
            if len(self._entries) >= self._size:
                self._entries.clear()
            body = JSONResponse(capabilities_document(tools, base_url)).body  # the bytes JSONResponse would send
            entry = self._entries[key] = (tuple(tools), bytes(body))
        return entry[1]
