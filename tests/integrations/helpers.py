"""Connecting integrations and accounts in a running app, through the store functions the CLI uses."""

from __future__ import annotations

from server.integrations import accounts, store
from server.state import AppState


async def connect(
    state: AppState,
    organization_id: str,
    integration_id: str,
    credentials: dict[str, str],
    *,
    url: str | None = None,
    command: list[str] | None = None,
    timeout_seconds: float = 20,
) -> dict[str, str]:
    """Creates the integration and one account per label; returns label → connectedAccountId."""
    async with state.sessions.begin() as session:
        await store.create_integration(
            session,
            organization_id=organization_id,
            integration_id=integration_id,
            title=integration_id,
            transport="stdio" if command else "http",
            url=url,
            command=command,
            credential_env="UPSTREAM_TOKEN" if command else None,
            timeout_seconds=timeout_seconds,
            actor="test",
        )
        rows = [
            await accounts.connect_account(
                session,
                organization_id=organization_id,
                integration_id=integration_id,
                label=label,
                credential=credential,
                vault=state.integrations.vault,
                actor="test",
            )
            for label, credential in credentials.items()
        ]
    for row in rows:
        await state.integrations.refresh(organization_id, row.id)
    return {row.label: row.id for row in rows}
