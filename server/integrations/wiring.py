"""Builds the integrations part of the app: vault, upstream pool, catalog, and the feeds that keep the
catalog true when another process (the CLI, another replica) changes an integration or an account."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import col

from auth.watcher import ChangeFeed
from server.integrations.breaker import CircuitBreaker
from server.integrations.catalog import IntegrationCatalog
from server.integrations.destinations import DestinationRules
from server.integrations.models import ConnectedAccount, Integration
from server.integrations.pool import UpstreamPool
from server.integrations.vault import load_vault
from server.observability.metrics import Metrics
from server.settings import Settings


def build_catalog(
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    *,
    on_change: Callable[[str], Awaitable[object]],
    clock: Callable[[], float],
    metrics: Metrics | None = None,
) -> IntegrationCatalog:
    secret = settings.secret_key.get_secret_value() if settings.secret_key else None
    catalog: IntegrationCatalog

    async def on_health(account_id: str, status: str, error: str | None) -> None:
        if metrics is not None:  # the breaker is per connected account: it opened ("error") or closed ("ok")
            metrics.integration_health(account_id, status == "ok")
            metrics.breaker_state(account_id, "closed" if status == "ok" else "open")
        await catalog.record_health(account_id, status, error)

    def on_tools_changed(organization_id: str, account_id: str) -> None:
        catalog.schedule_refresh(organization_id, account_id)

    pool = UpstreamPool(
        breaker=CircuitBreaker(
            threshold=settings.upstream_failure_threshold, cooldown=settings.upstream_cooldown_seconds, clock=clock
        ),
        idle_seconds=settings.upstream_idle_seconds,
        max_stdio=settings.max_stdio_upstreams,
        backoff_seconds=settings.upstream_backoff_seconds,
        on_health=on_health,
        on_tools_changed=on_tools_changed,
        destinations=DestinationRules(
            settings.integration_allowed_urls, own_base_url=settings.resolved_public_base_url
        ),
    )
    catalog = IntegrationCatalog(
        sessions,
        vault=load_vault(settings.data_dir, secret),
        pool=pool,
        ttl=settings.integration_cache_seconds,
        refresh_seconds=settings.integration_tools_refresh_seconds,
        on_change=on_change,
    )
    return catalog


def integration_feeds(
    sessions: async_sessionmaker[AsyncSession], catalog: IntegrationCatalog, *, interval: float
) -> list[ChangeFeed[ConnectedAccount] | ChangeFeed[Integration]]:
    async def account_changed(row: ConnectedAccount, _previous: ConnectedAccount | None) -> None:
        await catalog.changed(row.organization_id)

    async def integration_changed(row: Integration, _previous: Integration | None) -> None:
        await catalog.changed(row.organization_id)

    accounts: ChangeFeed[ConnectedAccount] = ChangeFeed(
        sessions,
        query=lambda since: select(ConnectedAccount).where(col(ConnectedAccount.updated_at) >= since),
        convert=lambda row: row,
        identity=lambda row: row.id,
        updated_at=lambda row: row.updated_at,
        listeners=[account_changed],
        interval=interval,
    )
    integrations: ChangeFeed[Integration] = ChangeFeed(
        sessions,
        query=lambda since: select(Integration).where(col(Integration.updated_at) >= since),
        convert=lambda row: row,
        identity=lambda row: (row.organization_id, row.id),
        updated_at=lambda row: row.updated_at,
        listeners=[integration_changed],
        interval=interval,
    )
    return [accounts, integrations]
