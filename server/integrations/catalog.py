"""An organization's integration tools, built from its connected accounts' cached upstream listings.

Each organization's integrations and accounts are read once and kept for ``ttl`` seconds (dropped at
once on a change made here or seen by the change feed). Upstream listings live on the account rows;
they are refreshed in the background when missing or older than ``refresh_seconds``, on the
upstream's ``tools/list_changed``, and by ``test``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import anyio
import mcp_types as types
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import col

from server.integrations import accounts as account_store
from server.integrations.models import ConnectedAccount, Integration
from server.integrations.pool import UpstreamPool, UpstreamUnavailable
from server.integrations.tools import integration_tool
from server.integrations.upstream import UpstreamTarget
from server.integrations.vault import Vault, VaultError
from tools.registry import Tool

logger = logging.getLogger(__name__)
OnChange = Callable[[str], Awaitable[object]]


def target_of(integration: Integration, account: ConnectedAccount, vault: Vault) -> UpstreamTarget:
    return UpstreamTarget(
        account_id=account.id,
        organization_id=account.organization_id,
        integration_id=integration.id,
        transport=integration.transport,
        url=integration.url,
        command=tuple(integration.command or ()),
        credential_header=integration.credential_header,
        credential_template=integration.credential_template,
        credential_env=integration.credential_env,
        timeout_seconds=integration.timeout_seconds,
        url_from_operator=integration.url_from_operator,
        version=f"{integration.updated_at.isoformat()}|{account.key_id}|{len(account.sealed_credential)}"
        f"|{hash(account.sealed_credential)}",
        credential=account_store.open_credential(vault, account),
    )


def listing_of(tools: list[types.Tool]) -> list[dict[str, Any]]:
    return [tool.model_dump(mode="json", by_alias=True, exclude_none=True) for tool in tools]


@dataclass(slots=True)
class OrganizationIntegrations:
    loaded_at: float
    integrations: dict[str, Integration]
    accounts: dict[str, ConnectedAccount]
    tools: dict[str, Tool] = field(default_factory=dict)
    targets: dict[str, UpstreamTarget] = field(default_factory=dict)


class IntegrationCatalog:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        *,
        vault: Vault,
        pool: UpstreamPool,
        ttl: float,
        refresh_seconds: float,
        on_change: OnChange,
    ) -> None:
        self._sessions = sessions
        self.vault = vault
        self.pool = pool
        self._ttl = ttl
        self._refresh_seconds = refresh_seconds
        self._on_change = on_change
        self._cache: dict[str, OrganizationIntegrations] = {}
        self._refresh_send: MemoryObjectSendStream[tuple[str, str]] | None = None
        self._pending: set[str] = set()

    async def run(self) -> None:
        """Background refreshes of upstream listings, one at a time, and the closing of connections whose
        account went away (the lifespan runs this)."""
        send, receive = anyio.create_memory_object_stream[tuple[str, str]](1000)
        self._refresh_send = send
        try:
            async with send, receive, anyio.create_task_group() as tasks:
                tasks.start_soon(self._close_removed_every, max(self._ttl, 0.5))
                await self._refresh_each(receive)
                tasks.cancel_scope.cancel()
        finally:
            self._refresh_send = None
            self._pending.clear()

    async def _close_removed_every(self, interval: float) -> None:
        while True:
            await anyio.sleep(interval)
            try:
                await self.close_removed()
            except Exception:  # a database hiccup must not end the loop
                logger.exception("closing connections of removed accounts failed")

    async def close_removed(self) -> None:
        """Accounts removed or disabled elsewhere (the CLI, another replica) lose their open connection and
        stdio process now, not when idle: a deletion leaves no row for the change feed to see."""
        open_ids = self.pool.account_ids()
        if not open_ids:
            return
        async with self._sessions() as session:
            kept = set(
                (
                    await session.execute(
                        select(col(ConnectedAccount.id)).where(
                            col(ConnectedAccount.id).in_(open_ids), col(ConnectedAccount.status) != "disabled"
                        )
                    )
                ).scalars()
            )
        for account_id in open_ids - kept:
            self.pool.forget(account_id)

    async def _refresh_each(self, receive: MemoryObjectReceiveStream[tuple[str, str]]) -> None:
        async for organization_id, account_id in receive:
            self._pending.discard(account_id)
            try:
                await self.refresh(organization_id, account_id)
            except UpstreamUnavailable as error:
                logger.info("tool listing of %s not refreshed: %s", account_id, error.message)
            except Exception:  # a background refresh must not end the loop
                logger.exception("tool listing of %s failed", account_id)

    def schedule_refresh(self, organization_id: str, account_id: str) -> None:
        if account_id in self._pending or self._refresh_send is None:
            return
        try:
            self._refresh_send.send_nowait((organization_id, account_id))
            self._pending.add(account_id)
        except anyio.WouldBlock:
            logger.warning("tool refresh queue full; %s waits for the next listing", account_id)

    def invalidate(self, organization_id: str | None = None) -> None:
        if organization_id is None:
            self._cache.clear()
        else:
            self._cache.pop(organization_id, None)

    async def changed(self, organization_id: str) -> None:
        self.invalidate(organization_id)
        await self._on_change(organization_id)

    async def _load(self, organization_id: str) -> OrganizationIntegrations:
        cached = self._cache.get(organization_id)
        now = time.monotonic()
        if cached is not None and now - cached.loaded_at < self._ttl:
            return cached
        async with self._sessions() as session:
            integrations = (
                await session.execute(select(Integration).where(col(Integration.organization_id) == organization_id))
            ).scalars()
            rows = await account_store.list_accounts(session, organization_id=organization_id)
        snapshot = OrganizationIntegrations(
            loaded_at=now,
            integrations={row.id: row for row in integrations},
            accounts={row.id: row for row in rows if row.status != "disabled"},
        )
        snapshot.tools = self._build_tools(snapshot)
        self._cache[organization_id] = snapshot
        for account in snapshot.accounts.values():
            stale = account.tools_refreshed_at is None or (
                time.time() - account.tools_refreshed_at.timestamp() > self._refresh_seconds
            )
            if stale and account.status == "ok":
                self.schedule_refresh(organization_id, account.id)
        return snapshot

    def _build_tools(self, snapshot: OrganizationIntegrations) -> dict[str, Tool]:
        found: dict[str, tuple[str, dict[str, Any], list[ConnectedAccount]]] = {}
        for account in snapshot.accounts.values():
            integration = snapshot.integrations.get(account.integration_id)
            if integration is None:
                continue
            for listed in account.tools or ():
                name = f"{integration.id}_{listed.get('name', '')}"
                found.setdefault(name, (integration.id, listed, []))[2].append(account)
        tools: dict[str, Tool] = {}
        for name, (integration_id, listed, holders) in sorted(found.items()):
            healthy = [account for account in holders if account.status == "ok"] or holders
            transport = snapshot.integrations[integration_id].transport
            tools[name] = integration_tool(
                name=name,
                integration_id=integration_id,
                transport=transport,
                listed=listed,
                account_ids=[account.id for account in healthy],
                call=self.call,
            )
        return tools

    async def tools(self, organization_id: str) -> dict[str, Tool]:
        return (await self._load(organization_id)).tools

    async def target(self, organization_id: str, account_id: str) -> UpstreamTarget:
        snapshot = await self._load(organization_id)
        target = snapshot.targets.get(account_id)
        if target is None:
            account = snapshot.accounts.get(account_id)
            integration = snapshot.integrations.get(account.integration_id) if account else None
            if account is None or integration is None:
                raise UpstreamUnavailable(f"Connected account {account_id} is no longer available")
            try:
                target = snapshot.targets[account_id] = target_of(integration, account, self.vault)
            except VaultError as error:
                raise UpstreamUnavailable(f"Credential of {account_id} cannot be opened: {error}") from None
        return target

    async def call(
        self, organization_id: str, account_id: str, name: str, arguments: dict[str, Any], **reporting: Any
    ) -> types.CallToolResult:
        target = await self.target(organization_id, account_id)
        return await self.pool.call_tool(target, name, arguments, **reporting)

    async def refresh(self, organization_id: str, account_id: str) -> list[types.Tool]:
        """Connects to the account's upstream, lists its tools and keeps the listing."""
        async with self._sessions() as session:
            account = await account_store.get_account(session, organization_id=organization_id, account_id=account_id)
            integration = await session.get(Integration, (organization_id, account.integration_id))
        if integration is None:
            raise UpstreamUnavailable(f"Integration {account.integration_id} is gone")
        try:
            target = target_of(integration, account, self.vault)
        except VaultError as error:
            raise UpstreamUnavailable(f"Credential of {account_id} cannot be opened: {error}") from None
        tools = await self.pool.list_tools(target)
        async with self._sessions.begin() as session:
            changed = await account_store.store_tool_listing(session, account_id=account_id, tools=listing_of(tools))
        self.invalidate(organization_id)
        if changed:
            await self._on_change(organization_id)
        return tools

    async def record_health(self, account_id: str, status: str, error: str | None) -> None:
        async with self._sessions.begin() as session:
            row = await session.get(ConnectedAccount, account_id)
            if row is None:
                return
            organization_id = row.organization_id
            changed = await account_store.record_health(
                session, account_id=account_id, status="ok" if status == "ok" else "error", error=error
            )
        if changed:
            await self.changed(organization_id)
