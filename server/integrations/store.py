"""Data functions for integrations (an organization's upstream MCP servers). Each validates its own
input, filters by organization, and records an audit event in the caller's transaction."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, Literal
from urllib.parse import urlsplit

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from auth.audit import record_audit
from auth.changes import publish_change
from auth.dbtypes import utcnow
from auth.errors import Conflict, InvalidRequest, NotFound
from server.integrations.models import ConnectedAccount, Integration

Transport = Literal["http", "stdio"]
INTEGRATION_ID = re.compile(r"^[a-z][a-z0-9]{0,31}$")
HEADER_NAME = re.compile(r"^[A-Za-z0-9-]{1,100}$")
ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,99}$")
ACCOUNT_STATUSES = ("ok", "error", "disabled")


def invalid(field: str, message: str) -> InvalidRequest:
    return InvalidRequest(f"Invalid {field}: {message}", details={field: message})


def clean_integration_id(value: str) -> str:
    if not INTEGRATION_ID.match(value):
        raise invalid("id", "lower-case letters and digits, starting with a letter, at most 32")
    return value


def clean_connection(
    transport: str,
    *,
    url: str | None,
    command: Sequence[str] | None,
    credential_header: str | None,
    credential_template: str,
    credential_env: str | None,
) -> None:
    if transport == "http":
        parts = urlsplit(url or "")
        if parts.scheme not in ("http", "https") or not parts.netloc or parts.username or parts.password:
            raise invalid("url", "an http(s) URL without credentials in it (the credential is sent in a header)")
        if command:
            raise invalid("command", "only for transport stdio")
        if credential_header is not None and not HEADER_NAME.match(credential_header):
            raise invalid("credentialHeader", "a header name")
        if "{secret}" not in credential_template or any(c in credential_template for c in "\r\n"):
            raise invalid("credentialTemplate", "must contain {secret} and no line breaks")
    elif transport == "stdio":
        if not command or not all(isinstance(part, str) and part and "\0" not in part for part in command):
            raise invalid("command", "the program and its arguments, a non-empty list")
        if url:
            raise invalid("url", "only for transport http")
        if credential_env is None or not ENV_NAME.match(credential_env):
            raise invalid("credentialEnv", "the environment variable a stdio upstream reads its credential from")
    else:
        raise invalid("transport", "http or stdio")


async def create_integration(
    session: AsyncSession,
    *,
    organization_id: str,
    integration_id: str,
    title: str | None,
    transport: str,
    url: str | None = None,
    command: Sequence[str] | None = None,
    credential_header: str | None = "Authorization",
    credential_template: str = "Bearer {secret}",
    credential_env: str | None = None,
    timeout_seconds: float = 60.0,
    url_from_operator: bool = False,
    actor: str,
) -> Integration:
    clean_integration_id(integration_id)
    clean_connection(
        transport,
        url=url,
        command=command,
        credential_header=credential_header,
        credential_template=credential_template,
        credential_env=credential_env,
    )
    if not 0 < timeout_seconds <= 3600:
        raise invalid("timeoutSeconds", "more than 0, at most 3600")
    if await session.get(Integration, (organization_id, integration_id)) is not None:
        raise Conflict(f"Integration {integration_id} already exists", details={"id": "already exists"})
    row = Integration(
        organization_id=organization_id,
        id=integration_id,
        title=(title or integration_id).strip()[:200],
        transport=transport,
        url=url if transport == "http" else None,
        command=list(command) if transport == "stdio" and command else None,
        credential_header=credential_header if transport == "http" else None,
        credential_template=credential_template,
        credential_env=credential_env if transport == "stdio" else None,
        timeout_seconds=timeout_seconds,
        url_from_operator=url_from_operator,
        created_by=actor,
    )
    session.add(row)
    record_audit(
        session,
        action="integration.created",
        actor=actor,
        organization_id=organization_id,
        details={"integrationId": integration_id, "transport": transport},
    )
    await publish_change(session, "integration", id=integration_id, organization_id=organization_id)
    return row


async def get_integration(session: AsyncSession, *, organization_id: str, integration_id: str) -> Integration:
    row = await session.get(Integration, (organization_id, integration_id))
    if row is None:
        raise NotFound(f"Unknown integration: {integration_id}")
    return row


async def list_integrations(session: AsyncSession, *, organization_id: str) -> list[Integration]:
    query = select(Integration).where(col(Integration.organization_id) == organization_id).order_by(col(Integration.id))
    return list((await session.execute(query)).scalars())


# Fields that decide where and how a connected account's credential is sent, by their wire names.
CREDENTIAL_ROUTE = {"url": "url", "credential_header": "credentialHeader", "credential_template": "credentialTemplate"}


async def refuse_moving_credentials(session: AsyncSession, row: Integration, changes: dict[str, Any]) -> None:
    """Credentials stored for one destination are never sent to another: whoever changes where they go
    would receive them, although no API ever returns a credential. Accounts are connected again instead."""
    moved = [
        CREDENTIAL_ROUTE[name] for name in changes if name in CREDENTIAL_ROUTE and changes[name] != getattr(row, name)
    ]
    if not moved:
        return
    connected = await session.scalar(
        select(func.count())
        .select_from(ConnectedAccount)
        .where(
            col(ConnectedAccount.organization_id) == row.organization_id,
            col(ConnectedAccount.integration_id) == row.id,
        )
    )
    if connected:
        reason = (
            f"would send the credentials of {connected} connected account(s) elsewhere; remove them and connect again"
        )
        raise Conflict(f"Cannot change {', '.join(moved)} of {row.id}: {reason}", details=dict.fromkeys(moved, reason))


async def update_integration(
    session: AsyncSession, *, organization_id: str, integration_id: str, changes: dict[str, Any], actor: str
) -> Integration:
    row = await get_integration(session, organization_id=organization_id, integration_id=integration_id)
    merged = {
        "url": row.url,
        "command": row.command,
        "credential_header": row.credential_header,
        "credential_template": row.credential_template,
        "credential_env": row.credential_env,
    } | {name: value for name, value in changes.items() if name != "title" and name != "timeout_seconds"}
    clean_connection(row.transport, **merged)
    await refuse_moving_credentials(session, row, changes)
    if "timeout_seconds" in changes and not 0 < changes["timeout_seconds"] <= 3600:
        raise invalid("timeoutSeconds", "more than 0, at most 3600")
    for name, value in changes.items():
        setattr(row, name, value)
    if "url" in changes:
        row.url_from_operator = False  # only the CLI vouches for a URL, and it changes none
    row.updated_at = utcnow()
    record_audit(
        session,
        action="integration.updated",
        actor=actor,
        organization_id=organization_id,
        details={"integrationId": integration_id, "fields": sorted(changes)},
    )
    await publish_change(session, "integration", id=integration_id, organization_id=organization_id)
    return row


async def delete_integration(session: AsyncSession, *, organization_id: str, integration_id: str, actor: str) -> None:
    row = await get_integration(session, organization_id=organization_id, integration_id=integration_id)
    await session.execute(
        delete(ConnectedAccount).where(
            col(ConnectedAccount.organization_id) == organization_id,
            col(ConnectedAccount.integration_id) == integration_id,
        )
    )
    await session.delete(row)
    record_audit(
        session,
        action="integration.deleted",
        actor=actor,
        organization_id=organization_id,
        details={"integrationId": integration_id},
    )
    await publish_change(session, "integration", id=integration_id, organization_id=organization_id)
