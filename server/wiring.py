"""Builds the application state: engine, key verifier, rate limiter, runtime, watchers."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import timedelta

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import col

from auth.basic import PasswordAuthenticator
from auth.dbtypes import database_now
from auth.failures import AuthFailureAggregator
from auth.hashing import SecretHasher
from auth.models import ApiKey, Organization, User
from auth.ratelimit import LimitPolicies, Limits, Overrides, RateLimitBackend, RateLimiter
from auth.ratelimit_memory import InProcessBackend
from auth.records import KeyRecord
from auth.relay import RelaySigner
from auth.streams import StreamRegistry
from auth.usage import LastUsedTracker, from_timestamp
from auth.verifier import KeyVerifier
from auth.watcher import key_change_feed
from server.db import create_engine, session_factory
from server.draining import Drain
from server.integrations.wiring import build_catalog, integration_feeds
from server.key_events import apply_notifications, key_change_listeners, tool_setting_listeners
from server.mcp.event_log import delete_old_events
from server.mcp.listening import KeyListeners
from server.mcp.server import principal_of
from server.mcp.sessions import McpSessionDirectory
from server.notifications import ChangeNotifications
from server.observability.decisions import DecisionLog
from server.observability.metrics import Metrics
from server.observability.tracing import Spans, configure_tracing, otlp_endpoint
from server.pepper import load_or_create_pepper
from server.routes.capability_documents import EncodedDocuments
from server.runtime.invocation import Runtime, Timing
from server.runtime.retention import RetentionPolicy
from server.runtime.slots import ExecutionSlots
from server.runtime.store import new_id
from server.settings import Settings
from server.state import AppState
from tools.memory.store import MemoryLimits
from tools.registry import ToolRegistry
from tools.switches import ToolSwitches, tool_setting_feed


def build_rate_limiter(
    settings: Settings, sessions: async_sessionmaker[AsyncSession], clock: Callable[[], float]
) -> RateLimiter | None:
    if not settings.rate_limit_enabled:
        return None

    async def load_overrides(key_id: str) -> Overrides:
        query = (
            select(
                col(ApiKey.rate_limit_per_second),
                col(ApiKey.daily_quota),
                col(Organization.rate_limit_per_second),
                col(Organization.daily_quota),
            )
            .join(Organization, col(Organization.id) == col(ApiKey.organization_id))
            .where(col(ApiKey.id) == key_id)
        )
        async with sessions() as session:
            row = (await session.execute(query)).first()
        return (row[0], row[1], row[2], row[3]) if row else (None, None, None, None)

    backend: RateLimitBackend
    if settings.redis_url:
        from redis.asyncio import BlockingConnectionPool, Redis

        from auth.ratelimit_redis import RedisBackend
        from auth.ratelimit_resilient import CircuitBreaker, ResilientBackend

        timeout = settings.redis_timeout_seconds
        # Blocking: a burst waits briefly for a pooled connection instead of failing. A silent Redis holds
        # connections only for ``timeout`` each, so ten times that bounds the wait without failing a busy burst.
        pool = BlockingConnectionPool.from_url(
            settings.redis_url,
            max_connections=settings.redis_max_connections,
            timeout=10 * timeout,
            socket_connect_timeout=timeout,
            socket_timeout=timeout,
        )
        backend = ResilientBackend(
            shared=RedisBackend(Redis.from_pool(pool), prefix=settings.redis_key_prefix),
            mode=settings.redis_outage,
            replicas=settings.replicas,
            breaker=CircuitBreaker(retry_seconds=settings.redis_retry_seconds),
        )
    else:
        backend = InProcessBackend()
    policies = LimitPolicies(
        load=load_overrides,
        default=Limits(per_second=settings.rate_limit_per_second, daily=settings.daily_quota),
        ttl=settings.rate_limit_policy_ttl_seconds,
    )
    return RateLimiter(backend=backend, policies=policies, clock=clock)


def build_observability(settings: Settings, clock: Callable[[], float]) -> tuple[Metrics, DecisionLog]:
    tracing = configure_tracing(otlp_endpoint(settings.otel_exporter_otlp_endpoint), settings.otel_service_name)
    metrics = Metrics(
        max_organizations=settings.metrics_max_organizations,
        spans=Spans(enabled=tracing),
        enabled=settings.metrics_enabled,
    )
    decisions = DecisionLog(
        enabled=settings.decisions_enabled,
        allowed_mode=settings.decisions_allowed,
        sample_rate=settings.decisions_sample_rate,
        refusals_per_minute=settings.decisions_refusals_per_minute,
        clock=clock,
    )
    return metrics, decisions


def build_state(settings: Settings, tools: ToolRegistry, clock: Callable[[], float] = time.time) -> AppState:
    metrics, decisions = build_observability(settings, clock)
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
                update(ApiKey)
                .where(col(ApiKey.id) == key_id)
                .values(key_hash=key_hash, updated_at=await database_now(session))
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
        source_failure_limit=settings.failed_verification_source_limit,
        now=lambda: from_timestamp(clock()),
        observer=metrics,
    )

    async def load_user(email: str) -> User | None:
        async with sessions() as session:
            return await session.scalar(select(User).where(col(User.email) == email))

    passwords = PasswordAuthenticator(
        load_user=load_user,
        hasher=hasher,
        failure_limit=settings.login_failure_limit,
        window=settings.login_failure_window_seconds,
        source_failure_limit=settings.login_source_failure_limit,
        max_pending_per_source=settings.login_max_pending_per_source,
        max_pending=settings.login_max_pending,
        max_concurrency=settings.argon2_max_concurrency,
    )
    streams = StreamRegistry(
        max_streams_per_key=settings.max_streams_per_key,
        max_stream_seconds=settings.max_stream_seconds,
        observer=metrics,
    )
    mcp_sessions = McpSessionDirectory(KeyListeners(principal_of))
    watcher = key_change_feed(
        sessions,
        key_change_listeners(verifier, streams, mcp_sessions, metrics),
        interval=settings.key_change_poll_seconds,
    )
    switches = ToolSwitches(sessions, ttl=settings.tool_settings_cache_seconds)
    tool_watcher = tool_setting_feed(
        sessions, tool_setting_listeners(switches, mcp_sessions, tools), interval=settings.key_change_poll_seconds
    )
    integrations = build_catalog(
        settings, sessions, on_change=mcp_sessions.notify_organization, clock=clock, metrics=metrics
    )
    state = AppState(
        settings=settings,
        engine=engine,
        sessions=sessions,
        hasher=hasher,
        verifier=verifier,
        watcher=watcher,
        tool_watcher=tool_watcher,
        public_base_url=settings.resolved_public_base_url,
        streams=streams,
        mcp_sessions=mcp_sessions,
        runtime=Runtime(
            tools=tools,
            db=sessions,
            switches=switches,
            worker_id=new_id("wrk"),
            timing=Timing(
                event_flush_seconds=settings.event_flush_seconds,
                execution_poll_seconds=settings.execution_poll_seconds,
                idempotency_ttl_seconds=settings.idempotency_ttl_seconds,
                record_tool_io=settings.otel_record_tool_io,
                record_max_bytes=settings.record_max_bytes,
            ),
            organization_tools=integrations.tools,
            telemetry=metrics,
            slots=ExecutionSlots(
                per_key=settings.max_executions_per_key, per_organization=settings.max_executions_per_organization
            ),
        ),
        clock=clock,
        passwords=passwords,
        last_used=LastUsedTracker(),
        failures=AuthFailureAggregator(),
        rate_limiter=build_rate_limiter(settings, sessions, clock),
        metrics=metrics,
        decisions=decisions,
        capabilities=EncodedDocuments(),
        integrations=integrations,
        integration_feeds=list(integration_feeds(sessions, integrations, interval=settings.key_change_poll_seconds)),
        drain=Drain(delay_seconds=settings.shutdown_drain_seconds),
        notifications=None,
        relay=RelaySigner(pepper),
    )
    if engine.dialect.name == "postgresql":
        state.notifications = ChangeNotifications(settings.resolved_database_url)
        apply_notifications(state.notifications, state)
    return state


def memory_limits(settings: Settings) -> MemoryLimits:
    return MemoryLimits(
        max_document_bytes=settings.memory_max_document_bytes, organization_quota_bytes=settings.memory_quota_bytes
    )


def retention_policy(settings: Settings) -> RetentionPolicy:
    return RetentionPolicy(
        executions=timedelta(days=settings.retention_days),
        idempotency=timedelta(seconds=settings.idempotency_ttl_seconds),
        audit=timedelta(days=settings.audit_retention_days),
        stream_events=timedelta(seconds=settings.mcp_event_retention_seconds),
        delete_stream_events=delete_old_events,
    )
