"""The application factory: ``create_app(settings) -> Starlette``, no import-time globals."""

from __future__ import annotations

import functools
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager

import anyio
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.types import Scope

from auth.errors import CapgateError
from auth.middleware import AuthMiddleware
from auth.ratelimit import RateLimitMiddleware
from auth.records import KeyRecord
from server.admin.app import PREFIX as ADMIN_PREFIX
from server.admin.app import admin_mount
from server.body_deadline import BodyDeadlineMiddleware
from server.errors import EXCEPTION_HANDLERS
from server.mcp.endpoint import McpEndpoint
from server.mcp.event_log import EventLog
from server.mcp.forwarding import SessionForwarder
from server.mcp.owners import SessionOwners
from server.mcp.server import build_mcp_server, build_session_manager
from server.mcp.session_quota import SessionQuota
from server.mcp.stateless import StatelessFastPath
from server.mcp.tool_calls import McpToolCalls
from server.observability.exposition import serve_metrics_bind
from server.observability.requests import RequestObservationMiddleware
from server.routes.routing import public_paths
from server.routes.table import api_routes, counts_toward_rate_limit, speaks_jsonrpc
from server.runtime.retention import run_purger
from server.runtime.worker import run_worker
from server.settings import Settings
from server.usage_flusher import UsageFlusher
from server.wiring import build_state, memory_limits, retention_policy
from tools.catalog import default_registry
from tools.registry import ToolRegistry


def create_app(
    settings: Settings | None = None,
    *,
    tools: ToolRegistry | None = None,
    clock: Callable[[], float] = time.time,
    own_address: Callable[[Starlette], AbstractAsyncContextManager[str | None]] | None = None,
) -> Starlette:
    """``own_address``: a worker's own listener (``--workers N``, ``server.serving.own_listener``), whose URL
    this process claims its legacy MCP sessions at."""
    settings = settings or Settings()
    state = build_state(settings, tools or default_registry(memory_limits(settings)), clock)
    tool_calls = McpToolCalls(state.runtime, state.streams, public_base_url=state.public_base_url)
    mcp_server = build_mcp_server(state.runtime, state.mcp_sessions, tool_calls, metrics=state.metrics)
    events = EventLog(state.sessions, per_stream=settings.mcp_events_per_stream)
    mcp_manager = build_session_manager(mcp_server, settings, events)
    quota = SessionQuota(mcp_manager, per_key=settings.max_mcp_sessions_per_key, total=settings.max_mcp_sessions)
    forwarder = SessionForwarder(
        SessionOwners(state.sessions, events, self_url=settings.resolved_replica_url),
        state.relay,
        max_body_bytes=settings.max_request_body_bytes,
    )
    fast_path = (
        StatelessFastPath(
            mcp_server, tool_calls, mcp_manager.security_settings, max_body_bytes=settings.max_request_body_bytes
        )
        if settings.mcp_fast_path
        else None
    )
    mcp_endpoint = McpEndpoint(mcp_manager, state.runtime, quota, forwarder, state.mcp_sessions.listeners, fast_path)
    flusher = UsageFlusher(state)

    def on_failure(scope: Scope, presented: str | None, error: CapgateError) -> None:
        if error.code != "missing_api_key":
            client = scope.get("client")
            source = client[0] if client else None
            state.failures.record(now=state.clock(), presented=presented, reason=error.code, source=source)

    def on_success(_scope: Scope, record: KeyRecord) -> None:
        state.last_used.touch(record.key_id, state.now())

    routes = [*api_routes(mcp_endpoint), admin_mount(state)]

    @asynccontextmanager
    async def lifespan(this_app: Starlette) -> AsyncIterator[None]:
        listener = AsyncExitStack()
        try:
            await flusher.load()
            if own_address is not None:
                own_url = await listener.enter_async_context(own_address(this_app))
                forwarder.owners.self_url = own_url or forwarder.owners.self_url
            await forwarder.owners.release_previous_process()
            state.drain.install()
            async with mcp_manager.run(), anyio.create_task_group() as tasks:
                state.runtime.background = tasks
                tasks.start_soon(state.watcher.run)
                tasks.start_soon(events.run)
                tasks.start_soon(state.tool_watcher.run)
                if state.notifications is not None:
                    tasks.start_soon(state.notifications.run)
                tasks.start_soon(state.integrations.pool.run)
                tasks.start_soon(state.integrations.run)
                for feed in state.integration_feeds:
                    tasks.start_soon(feed.run)
                tasks.start_soon(flusher.run)
                tasks.start_soon(
                    functools.partial(
                        run_purger,
                        state.sessions,
                        retention_policy(settings),
                        interval=settings.purge_interval_seconds,
                    )
                )
                tasks.start_soon(
                    functools.partial(
                        run_worker,
                        state.sessions,
                        worker_id=state.runtime.worker_id,
                        interval=settings.worker_heartbeat_seconds,
                        committer=state.runtime.committer,
                        clock=state.runtime.clock,
                    )
                )
                tasks.start_soon(
                    functools.partial(
                        state.decisions.run,
                        state.sessions,
                        state.runtime.committer.submit,
                        interval=settings.decisions_flush_seconds,
                    )
                )
                with serve_metrics_bind(settings.metrics_bind, state.metrics):
                    yield
                tasks.cancel_scope.cancel()
            await flusher.flush(final=True)
            await state.decisions.flush(state.sessions, state.runtime.committer.submit, final=True)
        finally:
            state.drain.uninstall()
            await listener.aclose()
            await forwarder.aclose()
            if state.rate_limiter is not None:
                await state.rate_limiter.backend.aclose()
            await state.engine.dispose()

    app = Starlette(
        routes=routes,
        exception_handlers=EXCEPTION_HANDLERS,
        lifespan=lifespan,
        middleware=[
            Middleware(
                RequestObservationMiddleware,
                metrics=state.metrics,
                spans=state.metrics.spans,
                decisions=state.decisions,
            ),
            Middleware(BodyDeadlineMiddleware, timeout=settings.body_read_timeout_seconds),
            Middleware(
                AuthMiddleware,
                verifier=state.verifier,
                streams=state.streams,
                public_paths=[*public_paths(routes), ADMIN_PREFIX],
                public_prefixes=(ADMIN_PREFIX + "/",),  # the console signs its users in itself
                speaks_jsonrpc=speaks_jsonrpc,
                on_failure=on_failure,
                on_success=on_success,
                server_timing=settings.server_timing,
            ),
            *(
                [
                    Middleware(
                        RateLimitMiddleware,
                        limiter=state.rate_limiter,
                        counts=counts_toward_rate_limit,
                        speaks_jsonrpc=speaks_jsonrpc,
                        observer=state.metrics,
                        uncounted=state.relay.relayed,
                    )
                ]
                if state.rate_limiter is not None
                else []
            ),
        ],
    )
    app.state.capgate = state
    return app
