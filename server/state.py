"""Everything the lifespan opens, handed to routes as one typed object."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from starlette.requests import Request

from auth.hashing import SecretHasher
from auth.streams import StreamRegistry
from auth.verifier import KeyVerifier
from auth.watcher import KeyChangeWatcher
from server.mcp_sessions import McpSessionDirectory
from server.settings import Settings
from tools.registry import ToolRegistry


@dataclass(slots=True)
class AppState:
    settings: Settings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    hasher: SecretHasher
    verifier: KeyVerifier
    watcher: KeyChangeWatcher
    tools: ToolRegistry
    public_base_url: str
    streams: StreamRegistry
    mcp_sessions: McpSessionDirectory


def app_state(request: Request) -> AppState:
    return request.app.state.capgate
