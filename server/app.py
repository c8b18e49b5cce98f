"""The application factory: ``create_app(settings) -> Starlette``, no import-time globals."""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
from sqlalchemy import update
from starlette.applications import Starlette
from starlette.middleware import Middleware

from auth.dbtypes import utcnow
from auth.hashing import SecretHasher
from auth.middleware import AuthMiddleware
from auth.models import ApiKey
from auth.records import KeyRecord
from auth.scopes import RUNTIME
from auth.verifier import KeyVerifier
from auth.watcher import KeyChangeWatcher
from server.db import create_engine, session_factory
from server.errors import EXCEPTION_HANDLERS
from server.live import LiveExecutions
from server.openapi import openapi_route
from server.pepper import load_or_create_pepper
from server.request_log import RequestLogMiddleware
from server.routes.capabilities import capabilities
from server.routes.executions import execution_events, get_execution
from server.routes.health import healthz, readyz
from server.routes.runtime import (
    archive_session,
    create_session,
    get_session,
    invoke,
    list_sessions,
    session_capabilities,
    session_invoke,
)
from server.routing import public_paths, public_route, scoped_route
from server.runtime import Runtime, run_worker
from server.runtime_store import new_id
from server.settings import Settings
from server.state import AppState
from tools.catalog import default_registry
from tools.memory.store import MemoryLimits
from tools.registry import ToolRegistry
from tools.switches import ToolSwitches

MCP_PATHS = ("/mcp", "/api/mcp")
# MCP clients probe these after a 401; they answer like the MCP endpoint (DESIGN §3).
OAUTH_PROBE_PATHS = ("/.well-known/", "/register", "/authorize", "/token")


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
    watcher = KeyChangeWatcher(sessions, verifier, interval=settings.key_change_poll_seconds)
    return AppState(
        settings=settings,
        engine=engine,
        sessions=sessions,
        hasher=hasher,
        verifier=verifier,
        watcher=watcher,
        tools=tools,
        public_base_url=settings.resolved_public_base_url,
        runtime=Runtime(
            worker_id=new_id("wrk"),
            live=LiveExecutions(),
            switches=ToolSwitches(sessions, ttl=settings.tool_settings_cache_seconds),
            memory_limits=memory_limits(settings),
        ),
    )


def memory_limits(settings: Settings) -> MemoryLimits:
    return MemoryLimits(
        max_document_bytes=settings.memory_max_document_bytes, organization_quota_bytes=settings.memory_quota_bytes
    )


def create_app(settings: Settings | None = None, *, tools: ToolRegistry | None = None) -> Starlette:
    settings = settings or Settings()
    state = build_state(settings, tools or default_registry(memory_limits(settings)))

    routes = [
        public_route("/healthz", healthz),
        public_route("/readyz", readyz),
        openapi_route(),
        scoped_route("/api/runtime/capabilities", capabilities, scope=RUNTIME),
        scoped_route("/capabilities", capabilities, scope=RUNTIME),
        scoped_route("/api/runtime/tools/{tool_name}", invoke, scope=RUNTIME, methods=["POST"]),
        scoped_route("/api/runtime/sessions", create_session, scope=RUNTIME, methods=["POST"]),
        scoped_route("/api/runtime/sessions", list_sessions, scope=RUNTIME),
        scoped_route("/api/runtime/sessions/{session_id}", get_session, scope=RUNTIME),
        scoped_route("/api/runtime/sessions/{session_id}/archive", archive_session, scope=RUNTIME, methods=["POST"]),
        scoped_route("/api/runtime/sessions/{session_id}/capabilities", session_capabilities, scope=RUNTIME),
        scoped_route(
            "/api/runtime/sessions/{session_id}/tools/{tool_name}", session_invoke, scope=RUNTIME, methods=["POST"]
        ),
        scoped_route("/api/runtime/executions/{execution_id}", get_execution, scope=RUNTIME),
        scoped_route("/api/runtime/executions/{execution_id}/events", execution_events, scope=RUNTIME),
    ]

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        try:
            async with anyio.create_task_group() as tasks:
                tasks.start_soon(state.watcher.run)
                tasks.start_soon(
                    functools.partial(
                        run_worker,
                        state.sessions,
                        worker_id=state.runtime.worker_id,
                        interval=settings.worker_heartbeat_seconds,
                        committer=state.runtime.committer,
                    )
                )
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
                public_paths=public_paths(routes),
                speaks_jsonrpc=speaks_jsonrpc,
            ),
        ],
    )
    app.state.capgate = state
    return app
