"""The application factory: ``create_app(settings) -> Starlette``, no import-time globals."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
from sqlalchemy import update
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from auth.dbtypes import utcnow
from auth.errors import NotFound
from auth.hashing import SecretHasher
from auth.middleware import AuthMiddleware
from auth.models import ApiKey
from auth.records import KeyRecord
from auth.scopes import RUNTIME
from auth.streams import StreamRegistry
from auth.verifier import KeyVerifier
from auth.watcher import KeyChangeWatcher
from server.db import create_engine, session_factory
from server.errors import EXCEPTION_HANDLERS
from server.key_events import key_change_listeners
from server.mcp_server import McpEndpoint, build_mcp_server, build_session_manager
from server.mcp_sessions import McpSessionDirectory
from server.openapi import openapi_route
from server.pepper import load_or_create_pepper
from server.request_log import RequestLogMiddleware
from server.routes.capabilities import capabilities
from server.routes.health import healthz, readyz
from server.routing import public_paths, public_route, scoped_asgi_route, scoped_route
from server.settings import Settings
from server.state import AppState
from tools.registry import ToolRegistry

MCP_PATHS = ("/mcp", "/api/mcp")
# MCP clients probe these after a 401; they answer like the MCP endpoint (DESIGN §3).
OAUTH_PROBE_PATHS = ("/.well-known/", "/register", "/authorize", "/token")


async def no_oauth_here(_scope: Scope, _receive: Receive, _send: Send) -> None:
    raise NotFound()


def oauth_probe_routes() -> list[Route]:
    """The OAuth paths clients probe after a 401 or 403, guarded like the MCP endpoint.

    A key without `runtime` then gets the same 403 and message here as on /mcp, so mcp-remote reports
    "Dynamic Client Registration rejected (HTTP 403): ... Missing required scope: runtime" instead of a 404.
    """
    paths = ["/.well-known/{rest:path}", *(p for p in OAUTH_PROBE_PATHS if not p.endswith("/"))]
    return [scoped_asgi_route(path, no_oauth_here, scope=RUNTIME) for path in paths]


def speaks_jsonrpc(path: str) -> bool:
    if any(path == p or path.startswith(p + "/") for p in MCP_PATHS):
        return True
    return path.startswith(OAUTH_PROBE_PATHS)


def build_state(settings: Settings, tools: ToolRegistry) -> AppState:
    engine = create_engine(settings.resolved_database_url)
    sessions = session_factory(engine)
    pepper = load_or_create_pepper(settings.data_dir, settings.pepper.get_secret_value() if settings.pepper else None)
    hasher = SecretHasher(settings.argon2_parameters)

    async def load_record(key_id: str) -> KeyRecord | None:
        async with sessions() as session:
            row = await session.get(ApiKey, key_id)
            return KeyRecord.from_row(row) if row else None

    async def save_rehashed(key_id: str, key_hash: str) -> None:
        async with sessions.begin() as session:
            await session.execute(
                update(ApiKey).where(ApiKey.id == key_id).values(key_hash=key_hash, updated_at=utcnow())
            )

    verifier = KeyVerifier(
        load_record=load_record,
        save_rehashed=save_rehashed,
        hasher=hasher,
        pepper=pepper,
        max_concurrency=settings.argon2_max_concurrency,
        record_ttl=settings.key_cache_ttl_seconds,
        cache_size=settings.key_cache_size,
        failure_limit=settings.failed_verification_limit,
        failure_window=settings.failed_verification_window_seconds,
    )
    streams = StreamRegistry(
        max_streams_per_key=settings.max_streams_per_key, max_stream_seconds=settings.max_stream_seconds
    )
    mcp_sessions = McpSessionDirectory()
    watcher = KeyChangeWatcher(
        sessions, key_change_listeners(verifier, streams, mcp_sessions), interval=settings.key_change_poll_seconds
    )
    return AppState(
        settings=settings,
        engine=engine,
        sessions=sessions,
        hasher=hasher,
        verifier=verifier,
        watcher=watcher,
        tools=tools,
        public_base_url=settings.resolved_public_base_url,
        streams=streams,
        mcp_sessions=mcp_sessions,
    )


def create_app(settings: Settings | None = None, *, tools: ToolRegistry | None = None) -> Starlette:
    settings = settings or Settings()
    state = build_state(settings, tools or ToolRegistry())
    mcp_manager = build_session_manager(build_mcp_server(state), settings)
    mcp_endpoint = McpEndpoint(mcp_manager)

    routes = [
        public_route("/healthz", healthz),
        public_route("/readyz", readyz),
        openapi_route(),
        scoped_route("/api/runtime/capabilities", capabilities, scope=RUNTIME),
        scoped_route("/capabilities", capabilities, scope=RUNTIME),
        *(scoped_asgi_route(path, mcp_endpoint, scope=RUNTIME) for path in MCP_PATHS),
        *oauth_probe_routes(),
    ]

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        try:
            async with mcp_manager.run(), anyio.create_task_group() as tasks:
                tasks.start_soon(state.watcher.run)
                yield
                tasks.cancel_scope.cancel()
        finally:
            await state.engine.dispose()

    app = Starlette(
        routes=routes,
        exception_handlers=EXCEPTION_HANDLERS,  # type: ignore[arg-type]
        lifespan=lifespan,
        middleware=[
            Middleware(RequestLogMiddleware),
            Middleware(
                AuthMiddleware,
                verifier=state.verifier,
                streams=state.streams,
                public_paths=public_paths(routes),
                speaks_jsonrpc=speaks_jsonrpc,
            ),
        ],
    )
    app.state.capgate = state
    return app
