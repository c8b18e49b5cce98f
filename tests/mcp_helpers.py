"""Official MCP client connections for tests: in-process (ASGI) or against a real server URL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, Literal

import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

Mode = Literal["legacy", "auto"]


def credential_headers(key: str | None, style: str = "bearer") -> dict[str, str]:
    if key is None:
        return {}
    return {"Authorization": f"Bearer {key}"} if style == "bearer" else {"x-api-key": key}


@asynccontextmanager
async def mcp_client(
    url: str,
    key: str | None,
    *,
    mode: Mode = "auto",
    style: str = "bearer",
    app: Any = None,
    **client_options: Any,
) -> AsyncIterator[Client]:
    transport = httpx2.ASGITransport(app=app) if app is not None else None
    http = httpx2.AsyncClient(
        headers=credential_headers(key, style), transport=transport, timeout=httpx2.Timeout(30, read=60)
    )
    async with http, Client(streamable_http_client(url, http_client=http), mode=mode, **client_options) as client:
        yield client


def leaf_errors(error: BaseException) -> list[BaseException]:
    """The exceptions a client raised, with task-group wrappers taken off."""
    if isinstance(error, BaseExceptionGroup):
        return [leaf for inner in error.exceptions for leaf in leaf_errors(inner)]
    return [error]
