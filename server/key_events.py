"""What happens in this process when a key or a tool switch changes — here, or elsewhere (via the feeds)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from auth import store
from auth.records import KeyRecord
from auth.streams import StreamRegistry
from auth.verifier import KeyVerifier
from auth.watcher import ChangeListener, KeyChangeListener
from server.mcp_sessions import McpSessionDirectory
from tools.models import ToolSetting
from tools.switches import ToolSwitches


def grant_of(record: KeyRecord) -> tuple[object, ...]:
    return (record.scopes, record.allowed_tools, record.revoked_at, record.expires_at)


def key_change_listeners(
    verifier: KeyVerifier, streams: StreamRegistry, mcp_sessions: McpSessionDirectory
) -> list[KeyChangeListener]:
    async def refresh_cache(record: KeyRecord, _previous: KeyRecord | None) -> None:
        verifier.refresh(record)

    async def kill_switch(record: KeyRecord, previous: KeyRecord | None) -> None:
        terminated = record.streams_terminated_at
        if terminated is not None and (previous is None or previous.streams_terminated_at != terminated):
            streams.terminate(record.key_id)

    async def announce_tool_changes(record: KeyRecord, previous: KeyRecord | None) -> None:
        # Revoking or expiring a key changes what it may use (to nothing) just as a scope change does.
        if previous is None or grant_of(previous) != grant_of(record):
            await mcp_sessions.notify_keys([record.key_id])

    return [refresh_cache, kill_switch, announce_tool_changes]


def tool_setting_listeners(
    switches: ToolSwitches, mcp_sessions: McpSessionDirectory
) -> list[ChangeListener[ToolSetting]]:
    async def apply(setting: ToolSetting, previous: ToolSetting | None) -> None:
        switches.invalidate(setting.organization_id)
        if previous is None or previous.enabled != setting.enabled:
            await mcp_sessions.notify_organization(setting.organization_id)

    return [apply]


async def revoke_key(
    sessions: async_sessionmaker[AsyncSession],
    verifier: KeyVerifier,
    streams: StreamRegistry,
    *,
    key_id: str,
    actor: str,
    organization_id: str | None = None,
    source: str | None = None,
    terminate_streams: bool = False,
) -> store.ApiKey:
    """Revokes in the database, then at once in this process; other replicas follow through the watcher."""
    async with sessions.begin() as session:
        record = await store.revoke_api_key(
            session,
            key_id=key_id,
            actor=actor,
            organization_id=organization_id,
            source=source,
            terminate_streams=terminate_streams,
        )
    verifier.forget(key_id)
    if terminate_streams:
        streams.terminate(key_id)
    return record
