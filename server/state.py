"""Everything the lifespan opens, handed to routes as one typed object."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from starlette.requests import Request

from auth.basic import PasswordAuthenticator
from auth.failures import AuthFailureAggregator
from auth.hashing import SecretHasher
from auth.ratelimit import RateLimiter
from auth.records import KeyRecord
from auth.relay import RelaySigner
from auth.streams import StreamRegistry
from auth.usage import LastUsedTracker, from_timestamp
from auth.verifier import KeyVerifier
from auth.watcher import ChangeFeed
from server.draining import Drain
from server.integrations.catalog import IntegrationCatalog
from server.mcp.sessions import McpSessionDirectory
from server.notifications import ChangeNotifications
from server.observability.decisions import DecisionLog
from server.observability.metrics import Metrics
from server.routes.capability_documents import EncodedDocuments
from server.runtime.invocation import Runtime
from server.settings import Settings
from tools.models import ToolSetting


@dataclass(slots=True)
class AppState:
    settings: Settings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    hasher: SecretHasher
    verifier: KeyVerifier
    watcher: ChangeFeed[KeyRecord]
    tool_watcher: ChangeFeed[ToolSetting]
    public_base_url: str
    streams: StreamRegistry
    mcp_sessions: McpSessionDirectory
    runtime: Runtime
    clock: Callable[[], float]
    """Seconds since the epoch; injectable so tests can move through days."""
    passwords: PasswordAuthenticator
    last_used: LastUsedTracker
    failures: AuthFailureAggregator
    rate_limiter: RateLimiter | None
    metrics: Metrics
    decisions: DecisionLog
    capabilities: EncodedDocuments
    integrations: IntegrationCatalog
    integration_feeds: list[ChangeFeed[Any]]
    drain: Drain
    notifications: ChangeNotifications | None
    """Change notifications from other processes (PostgreSQL only; SQLite relies on the feeds' poll)."""
    relay: RelaySigner
    """Marks requests relayed to a session's owner, so the owner does not count them again."""

    def now(self) -> datetime:
        return from_timestamp(self.clock())

    def forget_limits(self, key_id: str) -> None:
        if self.rate_limiter is not None:
            self.rate_limiter.policies.forget(key_id)


def app_state(request: Request) -> AppState:
    state: AppState = request.app.state.capgate
    return state
