"""Connected-account actions as the HTTP integrations API and the admin console both do them.

Each calls the data functions in ``accounts`` and then tells this process's catalog and pool
(other processes hear through the change feeds).
"""

from __future__ import annotations

from dataclasses import dataclass

from server.integrations import accounts
from server.integrations.models import ConnectedAccount
from server.integrations.pool import UpstreamUnavailable
from server.state import AppState


async def account_changed(state: AppState, organization_id: str, account_id: str | None = None) -> None:
    if account_id is not None:
        state.integrations.pool.forget(account_id)
    await state.integrations.changed(organization_id)


async def connect(
    state: AppState, *, organization_id: str, integration_id: str, label: str, credential: str, actor: str
) -> ConnectedAccount:
    """A new account; its tools are listed at once when the upstream answers, else soon in the background."""
    async with state.sessions.begin() as session:
        row = await accounts.connect_account(
            session,
            organization_id=organization_id,
            integration_id=integration_id,
            label=label,
            credential=credential,
            vault=state.integrations.vault,
            actor=actor,
        )
    account_id = row.id
    try:
        await state.integrations.refresh(organization_id, account_id)
    except UpstreamUnavailable:
        state.integrations.schedule_refresh(organization_id, account_id)
    await account_changed(state, organization_id)
    async with state.sessions() as session:
        return await accounts.get_account(session, organization_id=organization_id, account_id=account_id)


async def update(
    state: AppState,
    *,
    organization_id: str,
    account_id: str,
    actor: str,
    label: str | None = None,
    status: str | None = None,
    credential: str | None = None,
) -> ConnectedAccount:
    async with state.sessions.begin() as session:
        row = await accounts.update_account(
            session,
            organization_id=organization_id,
            account_id=account_id,
            actor=actor,
            label=label,
            status=status,
            credential=credential,
            vault=state.integrations.vault,
        )
    await account_changed(state, organization_id, row.id)
    if credential is not None:  # a new credential may see other tools
        state.integrations.schedule_refresh(organization_id, row.id)
    return row


@dataclass(frozen=True, slots=True)
class TestResult:
    ok: bool
    error: str | None
    tools: list[str]


async def test(state: AppState, *, organization_id: str, account_id: str) -> TestResult:
    """Connects to the account's upstream and lists its tools (keeping the listing)."""
    state.integrations.pool.forget(account_id)
    try:
        tools = await state.integrations.refresh(organization_id, account_id)
    except UpstreamUnavailable as error:
        await state.integrations.record_health(account_id, "error", error.message)
        return TestResult(ok=False, error=error.message, tools=[])
    await state.integrations.record_health(account_id, "ok", None)
    return TestResult(ok=True, error=None, tools=[tool.name for tool in tools])
