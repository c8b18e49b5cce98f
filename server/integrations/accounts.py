"""Data functions for connected accounts: one sealed credential each for an organization's integration.
The credential goes in sealed and only ``open_credential`` (for the upstream pool) opens it again."""

from __future__ import annotations

from typing import Any, Literal

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from auth.audit import record_audit
from auth.changes import publish_change
from auth.dbtypes import utcnow
from auth.errors import Conflict, NotFound
from server.integrations.models import ConnectedAccount
from server.integrations.store import get_integration, invalid
from server.integrations.vault import Vault
from server.runtime.store import new_id

MAX_CREDENTIAL_BYTES = 16_384


def clean_credential(credential: str) -> str:
    credential = credential.strip()
    if not credential or len(credential.encode()) > MAX_CREDENTIAL_BYTES or not credential.isprintable():
        raise invalid("credential", f"1 to {MAX_CREDENTIAL_BYTES} printable bytes")
    return credential


def clean_label(label: str) -> str:
    label = label.strip()
    if not label or len(label) > 200 or not label.isprintable():
        raise invalid("label", "1 to 200 printable characters")
    return label


async def connect_account(
    session: AsyncSession,
    *,
    organization_id: str,
    integration_id: str,
    label: str,
    credential: str,
    vault: Vault,
    actor: str,
) -> ConnectedAccount:
    await get_integration(session, organization_id=organization_id, integration_id=integration_id)
    label = clean_label(label)
    key_id, sealed = vault.seal(organization_id, clean_credential(credential))
    taken = await session.scalar(
        select(col(ConnectedAccount.id)).where(
            col(ConnectedAccount.organization_id) == organization_id,
            col(ConnectedAccount.integration_id) == integration_id,
            col(ConnectedAccount.label) == label,
        )
    )
    if taken is not None:
        raise Conflict(f"Account {label} of {integration_id} already exists", details={"label": "already exists"})
    row = ConnectedAccount(
        id=new_id("acc"),
        organization_id=organization_id,
        integration_id=integration_id,
        label=label,
        key_id=key_id,
        sealed_credential=sealed,
        created_by=actor,
        updated_by=actor,
    )
    session.add(row)
    record_audit(
        session,
        action="account.connected",
        actor=actor,
        organization_id=organization_id,
        details={"connectedAccountId": row.id, "integrationId": integration_id, "label": label},
    )
    await publish_change(session, "integration", id=row.integration_id, organization_id=row.organization_id)
    return row


async def get_account(session: AsyncSession, *, organization_id: str, account_id: str) -> ConnectedAccount:
    row = await session.get(ConnectedAccount, account_id)
    if row is None or row.organization_id != organization_id:
        raise NotFound(f"Unknown connected account: {account_id}")
    return row


async def list_accounts(
    session: AsyncSession, *, organization_id: str, integration_id: str | None = None
) -> list[ConnectedAccount]:
    query = select(ConnectedAccount).where(col(ConnectedAccount.organization_id) == organization_id)
    if integration_id is not None:
        query = query.where(col(ConnectedAccount.integration_id) == integration_id)
    return list((await session.execute(query.order_by(col(ConnectedAccount.created_at)))).scalars())


async def update_account(
    session: AsyncSession,
    *,
    organization_id: str,
    account_id: str,
    actor: str,
    label: str | None = None,
    status: str | None = None,
    credential: str | None = None,
    vault: Vault | None = None,
) -> ConnectedAccount:
    row = await get_account(session, organization_id=organization_id, account_id=account_id)
    fields: list[str] = []
    if label is not None:
        row.label = clean_label(label)
        fields.append("label")
    if status is not None:
        if status not in ("ok", "disabled"):
            raise invalid("status", "ok or disabled")
        row.status, row.last_error = status, None
        fields.append("status")
    if credential is not None:
        if vault is None:
            raise ValueError("a vault is needed to change a credential")
        row.key_id, row.sealed_credential = vault.seal(organization_id, clean_credential(credential))
        row.tools_refreshed_at = None  # listed again soon under the new credential; the old listing serves till then
        fields.append("credential")
    row.updated_by, row.updated_at = actor, utcnow()
    record_audit(
        session,
        action="account.updated",
        actor=actor,
        organization_id=organization_id,
        details={"connectedAccountId": account_id, "fields": fields},
    )
    await publish_change(session, "integration", id=row.integration_id, organization_id=row.organization_id)
    return row


async def delete_account(session: AsyncSession, *, organization_id: str, account_id: str, actor: str) -> None:
    row = await get_account(session, organization_id=organization_id, account_id=account_id)
    await session.delete(row)
    record_audit(
        session,
        action="account.removed",
        actor=actor,
        organization_id=organization_id,
        details={"connectedAccountId": account_id, "integrationId": row.integration_id},
    )
    await publish_change(session, "integration", id=row.integration_id, organization_id=row.organization_id)


async def record_health(
    session: AsyncSession, *, account_id: str, status: Literal["ok", "error"], error: str | None
) -> bool:
    """The pool's verdict on an account (never overrides ``disabled``). True when the status changed."""
    row = await session.get(ConnectedAccount, account_id)
    if row is None or row.status == "disabled" or (row.status == status and row.last_error == error):
        return False
    changed = row.status != status
    row.status, row.last_error, row.updated_at = status, error[:2000] if error else None, utcnow()
    await publish_change(session, "integration", id=row.integration_id, organization_id=row.organization_id)
    return changed


async def store_tool_listing(session: AsyncSession, *, account_id: str, tools: list[dict[str, Any]]) -> bool:
    """Keeps the upstream's tool listing; True when it differs from the last one."""
    row = await session.get(ConnectedAccount, account_id)
    if row is None:
        return False
    changed = row.tools != tools
    row.tools, row.tools_refreshed_at = tools, utcnow()
    if changed:
        row.updated_at = row.tools_refreshed_at
        await publish_change(session, "integration", id=row.integration_id, organization_id=row.organization_id)
    return changed


def open_credential(vault: Vault, account: ConnectedAccount) -> str:
    return vault.open(account.organization_id, account.key_id, account.sealed_credential)


async def rotate_credentials(session: AsyncSession, *, vault: Vault, actor: str) -> int:
    """Re-seals every credential not under the vault's current key. Returns how many rows changed."""
    query = select(ConnectedAccount).where(col(ConnectedAccount.key_id) != vault.current_key_id)
    count = 0
    for row in (await session.execute(query)).scalars():
        row.key_id, row.sealed_credential = vault.seal(row.organization_id, open_credential(vault, row))
        count += 1
    record_audit(
        session,
        action="secrets.rotated",
        actor=actor,
        organization_id=None,
        details={"keyId": vault.current_key_id, "accounts": count},
    )
    return count


async def integration_tool_names(session: AsyncSession, *, organization_id: str) -> set[str]:
    """``{integration}_{tool}`` of every tool the organization's accounts list (for tool switches)."""
    return {
        f"{row.integration_id}_{tool.get('name')}"
        for row in await list_accounts(session, organization_id=organization_id)
        for tool in row.tools or ()
    }
