"""The application factory: ``create_app(settings) -> Starlette``, no import-time globals."""

from __future__ import annotations

import functools
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import anyio
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from auth.basic import PasswordAuthenticator
from auth.dbtypes import utcnow
from auth.errors import CapgateError, NotFound
from auth.failures import AuthFailureAggregator
from auth.hashing import SecretHasher
from auth.middleware import AuthMiddleware
from auth.models import ApiKey, Organization, User
from auth.ratelimit import LimitPolicies, Limits, Overrides, RateLimitBackend, RateLimiter, RateLimitMiddleware
from auth.ratelimit_memory import InProcessBackend
from auth.records import KeyRecord
from auth.scopes import KEYS_MANAGE, RUNTIME
from auth.streams import StreamRegistry
from auth.usage import LastUsedTracker, from_timestamp
from auth.verifier import KeyVerifier
from auth.watcher import key_change_feed
from server.admin.app import PREFIX as ADMIN_PREFIX
from server.admin.app import admin_mount
from server.db import create_engine, session_factory
from server.errors import EXCEPTION_HANDLERS
from server.key_events import key_change_listeners, tool_setting_listeners
from server.live import LiveExecutions
from server.mcp_server import McpEndpoint, build_mcp_server, build_session_manager
from server.mcp_sessions import McpSessionDirectory
from server.openapi import openapi_route
from server.pepper import load_or_create_pepper
from server.request_log import RequestLogMiddleware
from server.routes.audit import list_audit
from server.routes.capabilities import capabilities
from server.routes.executions import execution_events, get_execution
from server.routes.health import healthz, readyz
from server.routes.keys import (
    create_key_with_key,
    create_key_with_password,
    get_key,
    list_keys,
    revoke_key,
    rotate_key,
    update_key,
)
from server.routes.runtime import (
    archive_session,
    create_session,
    get_session,
    invoke,
    list_sessions,
    session_capabilities,
    session_invoke,
)
from server.routing import public_paths, public_route, scoped_asgi_route, scoped_route
from server.runtime import Runtime, run_worker
from server.runtime_store import new_id
from server.settings import Settings
from server.state import AppState
from server.usage_flusher import UsageFlusher
from tools.catalog import default_registry
from tools.memory.store import MemoryLimits
from tools.registry import ToolRegistry
from tools.switches import ToolSwitches, tool_setting_feed

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


def counts_toward_rate_limit(path: str) -> bool:
    """Runtime and MCP routes count; key management, the audit log and public routes do not (DESIGN §5)."""
    if path == "/capabilities" or path.startswith("/api/runtime/"):
        return True
    return any(path == p or path.startswith(p + "/") for p in MCP_PATHS)


def build_rate_limiter(
    settings: Settings, sessions: async_sessionmaker[AsyncSession], clock: Callable[[], float]
) -> RateLimiter | None:
    if not settings.rate_limit_enabled:
        return None

    async def load_overrides(key_id: str) -> Overrides:
        query = (
            select(
                ApiKey.rate_limit_per_second,
                ApiKey.daily_quota,
                Organization.rate_limit_per_second,
                Organization.daily_quota,
            )
            .join(Organization, Organization.id == ApiKey.organization_id)
            .where(ApiKey.id == key_id)
        )
        async with sessions() as session:
            row = (await session.execute(query)).first()
        return (row[0], row[1], row[2], row[3]) if row else (None, None, None, None)

    backend: RateLimitBackend
    if settings.redis_url:
        from redis.asyncio import BlockingConnectionPool, Redis

        from auth.ratelimit_redis import RedisBackend

        # Blocking: a burst waits briefly for a pooled connection instead of failing.
        pool = BlockingConnectionPool.from_url(settings.redis_url, max_connections=settings.redis_max_connections)
        backend = RedisBackend(Redis.from_pool(pool), prefix=settings.redis_key_prefix)
    else:
        backend = InProcessBackend()
    policies = LimitPolicies(
        load=load_overrides,
        default=Limits(per_second=settings.rate_limit_per_second, daily=settings.daily_quota),
        ttl=settings.rate_limit_policy_ttl_seconds,
    )
    return RateLimiter(backend=backend, policies=policies, clock=clock)


def build_state(settings: Settings, tools: ToolRegistry, clock: Callable[[], float] = time.time) -> AppState:
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
        now=lambda: from_timestamp(clock()),
    )

    async def load_user(email: str) -> User | None:
        async with sessions() as session:
            return await session.scalar(select(User).where(User.email == email))

    passwords = PasswordAuthenticator(
        load_user=load_user,
        hasher=hasher,
        failure_limit=settings.login_failure_limit,
        window=settings.login_failure_window_seconds,
        max_concurrency=settings.argon2_max_concurrency,
    )
    streams = StreamRegistry(
        max_streams_per_key=settings.max_streams_per_key, max_stream_seconds=settings.max_stream_seconds
    )
    mcp_sessions = McpSessionDirectory()
    watcher = key_change_feed(
        sessions, key_change_listeners(verifier, streams, mcp_sessions), interval=settings.key_change_poll_seconds
    )
    switches = ToolSwitches(sessions, ttl=settings.tool_settings_cache_seconds)
    tool_watcher = tool_setting_feed(
        sessions, tool_setting_listeners(switches, mcp_sessions), interval=settings.key_change_poll_seconds
    )
    return AppState(
        settings=settings,
        engine=engine,
        sessions=sessions,
        hasher=hasher,
        verifier=verifier,
        watcher=watcher,
        tool_watcher=tool_watcher,
        tools=tools,
        public_base_url=settings.resolved_public_base_url,
        streams=streams,
        mcp_sessions=mcp_sessions,
        runtime=Runtime(
            worker_id=new_id("wrk"),
            live=LiveExecutions(),
            switches=switches,
            memory_limits=memory_limits(settings),
        ),
        clock=clock,
        passwords=passwords,
        last_used=LastUsedTracker(),
        failures=AuthFailureAggregator(),
        rate_limiter=build_rate_limiter(settings, sessions, clock),
    )


def memory_limits(settings: Settings) -> MemoryLimits:
    return MemoryLimits(
        max_document_bytes=settings.memory_max_document_bytes, organization_quota_bytes=settings.memory_quota_bytes
    )


def create_app(
    settings: Settings | None = None,
    *,
    tools: ToolRegistry | None = None,
    clock: Callable[[], float] = time.time,
) -> Starlette:
    settings = settings or Settings()
    state = build_state(settings, tools or default_registry(memory_limits(settings)), clock)
    mcp_manager = build_session_manager(build_mcp_server(state), settings)
    mcp_endpoint = McpEndpoint(mcp_manager, state)
    flusher = UsageFlusher(state)

    def on_failure(scope: Scope, presented: str | None, error: CapgateError) -> None:
        if error.code != "missing_api_key":
            client = scope.get("client")
            source = client[0] if client else None
            state.failures.record(now=state.clock(), presented=presented, reason=error.code, source=source)

    def on_success(_scope: Scope, record: KeyRecord) -> None:
        state.last_used.touch(record.key_id, state.now())

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
        *(scoped_asgi_route(path, mcp_endpoint, scope=RUNTIME) for path in MCP_PATHS),
        *oauth_probe_routes(),
        public_route("/api-keys", create_key_with_password, methods=["POST"]),  # HTTP Basic, checked in the route
        scoped_route("/api/keys", list_keys, scope=KEYS_MANAGE),
        scoped_route("/api/keys", create_key_with_key, scope=KEYS_MANAGE, methods=["POST"]),
        scoped_route("/api/keys/{key_id}", get_key, scope=KEYS_MANAGE),
        scoped_route("/api/keys/{key_id}", update_key, scope=KEYS_MANAGE, methods=["PATCH"]),
        scoped_route("/api/keys/{key_id}", revoke_key, scope=KEYS_MANAGE, methods=["DELETE"]),
        scoped_route("/api/keys/{key_id}/rotate", rotate_key, scope=KEYS_MANAGE, methods=["POST"]),
        scoped_route("/api/audit", list_audit, scope=KEYS_MANAGE),
        admin_mount(state),
    ]

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        try:
            await flusher.load()
            async with mcp_manager.run(), anyio.create_task_group() as tasks:
                tasks.start_soon(state.watcher.run)
                tasks.start_soon(state.tool_watcher.run)
                tasks.start_soon(flusher.run)
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
            await flusher.flush(final=True)
        finally:
            if state.rate_limiter is not None:
                await state.rate_limiter.backend.aclose()
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
                public_paths=[*public_paths(routes), ADMIN_PREFIX],
                public_prefixes=(ADMIN_PREFIX + "/",),
                speaks_jsonrpc=speaks_jsonrpc,
                on_failure=on_failure,
                on_success=on_success,
            ),
            *(
                [
                    Middleware(
                        RateLimitMiddleware,
                        limiter=state.rate_limiter,
                        counts=counts_toward_rate_limit,
                        speaks_jsonrpc=speaks_jsonrpc,
                    )
                ]
                if state.rate_limiter is not None
                else []
            ),
        ],
    )
    app.state.capgate = state
    return app
