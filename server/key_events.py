"""What happens in this process when a key or a tool switch changes — here, or elsewhere (via the feeds,
woken at once by change notifications on PostgreSQL)."""

from __future__ import annotations

from datetime import datetime

from auth.changes import Change
from auth.records import KeyRecord
from auth.streams import StreamRegistry
from auth.verifier import KeyVerifier
from auth.watcher import ChangeListener, KeyChangeListener
from server.mcp.sessions import Grant, McpSessionDirectory
from server.notifications import ChangeNotifications
from server.observability.metrics import Metrics
from server.state import AppState
from tools.models import ToolSetting
from tools.registry import ToolRegistry
from tools.switches import ToolSwitches


def grant_of(record: KeyRecord) -> Grant:
    expires = int(record.expires_at.timestamp()) if record.expires_at else None
    return (record.scopes, record.allowed_tools, record.revoked_at is not None, expires)


def key_change_listeners(
    verifier: KeyVerifier, streams: StreamRegistry, mcp_sessions: McpSessionDirectory, metrics: Metrics
) -> list[KeyChangeListener]:
    async def refresh_cache(record: KeyRecord, _previous: KeyRecord | None) -> None:
        verifier.refresh(record)

    async def kill_switch(record: KeyRecord, previous: KeyRecord | None) -> None:
        terminated = record.streams_terminated_at
        if terminated is not None and (previous is None or previous.streams_terminated_at != terminated):
            await mcp_sessions.listeners.end(record.key_id)  # completion result first, then the cut
            streams.terminate(record.key_id)

    async def announce_tool_changes(record: KeyRecord, _previous: KeyRecord | None) -> None:
        # Revoking or expiring a key changes what it may use (to nothing) just as a scope change does.
        await mcp_sessions.grant_changed(record.key_id, grant_of(record))

    async def measure_propagation(record: KeyRecord, previous: KeyRecord | None) -> None:
        if is_revocation(record, previous):
            metrics.key_change_applied(record.key_id, record.updated_at)

    return [refresh_cache, kill_switch, announce_tool_changes, measure_propagation]


def is_revocation(record: KeyRecord, previous: KeyRecord | None) -> bool:
    """The key was just revoked or its streams were just terminated."""
    if record.revoked_at is not None and (previous is None or previous.revoked_at is None):
        return True
    terminated = record.streams_terminated_at
    return terminated is not None and (previous is None or previous.streams_terminated_at != terminated)


def tool_setting_listeners(
    switches: ToolSwitches, mcp_sessions: McpSessionDirectory, tools: ToolRegistry
) -> list[ChangeListener[ToolSetting]]:
    async def apply(setting: ToolSetting, previous: ToolSetting | None) -> None:
        switches.invalidate(setting.organization_id)
        tool = tools.get(setting.tool_name)
        if tool is not None and (previous is None or previous.enabled != setting.enabled):
            # Only keys that may use the tool see their list change.
            await mcp_sessions.notify_organization(setting.organization_id, lambda p: tools.verdict(p, tool).allowed)

    return [apply]


async def key_changed_here(
    state: AppState, key_id: str, *, terminate_streams: bool = False, revoked_at: datetime | None = None
) -> int:
    """After this process changed a key: drop it from the caches at once, have the feed tell its open
    MCP sessions now, and with ``terminate_streams`` close its open streams. Returns how many streams were closed.
    (Other replicas do the same when their change feed sees the row.)"""
    state.verifier.forget(key_id)
    state.forget_limits(key_id)
    if revoked_at is not None:
        state.metrics.key_change_applied(key_id, revoked_at, now=state.clock())
    closed = 0
    if terminate_streams:
        await state.mcp_sessions.listeners.end(key_id)  # completion result first, then the cut
        closed = state.streams.terminate(key_id)
    state.watcher.wake()  # its sessions and listeners hear of a grant change from the feed, exactly once
    return closed


def apply_notifications(notifications: ChangeNotifications, state: AppState) -> None:
    """Another process committed a change: drop what it invalidates and let the feeds read it now."""

    def key_changed(change: Change | None) -> None:
        if change is not None and change.id is not None:
            state.verifier.reload(change.id)  # refused from the very next request, before the feed has run
            state.forget_limits(change.id)
        state.watcher.wake()

    def tool_setting_changed(change: Change | None) -> None:
        state.runtime.switches.invalidate(change.organization_id if change is not None else None)
        state.tool_watcher.wake()

    def organization_changed(change: Change | None) -> None:
        tool_setting_changed(change)
        state.watcher.wake()

    def execution_changed(change: Change | None) -> None:
        if change is not None and change.id is not None:
            state.runtime.live.changed_elsewhere(change.id)

    def integration_changed(_change: Change | None) -> None:
        for feed in state.integration_feeds:
            feed.wake()

    notifications.on("key", key_changed)
    notifications.on("integration", integration_changed)
    notifications.on("execution", execution_changed)
    notifications.on("tool_setting", tool_setting_changed)
    notifications.on("organization", organization_changed)
