"""CLI commands for the key lifecycle: `keys rotate`, `keys update`, `orgs update` and `audit`."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Annotated, Any

import typer
from sqlalchemy.ext.asyncio import AsyncSession

from auth import store
from auth.audit import list_audit_events
from auth.dbtypes import utcnow
from auth.errors import InvalidRequest
from auth.grants import clean_scopes
from auth.lifecycle import KeyChanges, rotate_api_key, update_api_key
from server.cli.main import (
    CLI_ACTOR,
    KEY_COLUMNS,
    JsonOption,
    audit_app,
    fail,
    hasher_for,
    iso,
    key_row,
    keys_app,
    org_row,
    orgs_app,
    out,
    parse_duration,
    print_rows,
    run_in_session,
)
from server.settings import Settings

LimitOption = Annotated[int | None, typer.Option(min=1, help="Override; see --clear-limits to remove.")]


@keys_app.command("rotate")
def keys_rotate(
    key_id: str,
    overlap: Annotated[str, typer.Option(help="How long the old key keeps working, e.g. 24h, 30m, 0s.")] = "24h",
    as_json: JsonOption = False,
) -> None:
    """Replace a key with a new one with the same settings; the old one expires after the overlap."""
    window = timedelta(0) if overlap.strip() in ("0", "0s") else parse_duration(overlap)

    async def operation(session: AsyncSession, settings: Settings) -> tuple[dict[str, Any], str, dict[str, Any]]:
        record = await store.get_api_key(session, key_id=key_id)
        organization = await store.get_organization(session, ref=record.organization_id)
        created = await rotate_api_key(
            session,
            record=record,
            organization=organization,
            overlap=window,
            hasher=hasher_for(settings),
            actor=CLI_ACTOR,
            now=utcnow(),
            source="cli",
        )
        return key_row(created.record), created.secret, key_row(record)

    row, secret, old = run_in_session(operation)
    if as_json:
        out.print(json.dumps({**row, "key": secret, "replaces": old}, indent=2), markup=False)
        return
    print_rows([row], KEY_COLUMNS, as_json=False)
    out.print(f"\n{old['id']} keeps working until {old['expires_at']}.", markup=False)
    out.print("\nThe new key, shown only this once:\n", markup=False)
    out.print(f"    {secret}\n", markup=False)


@keys_app.command("update")
def keys_update(
    key_id: str,
    name: Annotated[str | None, typer.Option(help="New name.")] = None,
    scope: Annotated[list[str] | None, typer.Option(help="Replace the scopes (repeat for several).")] = None,
    allowed_tool: Annotated[list[str] | None, typer.Option(help="Replace the allowed tool globs.")] = None,
    all_tools: Annotated[bool, typer.Option("--all-tools", help="Remove the allowed-tools limit.")] = False,
    rate_limit_per_second: LimitOption = None,
    daily_quota: LimitOption = None,
    clear_limits: Annotated[bool, typer.Option("--clear-limits", help="Use the organization's limits.")] = False,
    as_json: JsonOption = False,
) -> None:
    """Change a key's name, scopes, allowed tools or rate limits; applies to its next request."""
    if allowed_tool and all_tools:
        raise fail("give either --allowed-tool or --all-tools, not both")
    changes = KeyChanges()
    if name is not None:
        changes.name = name
    if scope:
        try:
            changes.scopes = clean_scopes(scope)
        except InvalidRequest as exc:
            raise fail(exc.message) from None
    if allowed_tool or all_tools:
        changes.allowed_tools = None if all_tools else allowed_tool
    if clear_limits:
        changes.rate_limit_per_second = changes.daily_quota = None
    if rate_limit_per_second is not None:
        changes.rate_limit_per_second = rate_limit_per_second
    if daily_quota is not None:
        changes.daily_quota = daily_quota

    async def operation(session: AsyncSession, _settings: Settings) -> dict[str, Any]:
        record = await store.get_api_key(session, key_id=key_id)
        record = await update_api_key(
            session, record=record, changes=changes, actor=CLI_ACTOR, now=utcnow(), source="cli"
        )
        return {**key_row(record), "changed": changes.changed}

    row = run_in_session(operation)
    if as_json:
        out.print(json.dumps(row, indent=2), markup=False)
    elif row["changed"]:
        out.print(f"Updated {row['id']}: {', '.join(row['changed'])}.", markup=False)
    else:
        out.print(f"Nothing to change on {row['id']}.", markup=False)


@orgs_app.command("update")
def orgs_update(
    org: str,
    rate_limit_per_second: LimitOption = None,
    daily_quota: LimitOption = None,
    clear_limits: Annotated[bool, typer.Option("--clear-limits", help="Use the server defaults.")] = False,
    as_json: JsonOption = False,
) -> None:
    """Set an organization's rate limits, the default for its keys."""

    async def operation(session: AsyncSession, _settings: Settings) -> dict[str, Any]:
        organization = await store.get_organization(session, ref=org)
        if clear_limits:
            organization.rate_limit_per_second = organization.daily_quota = None
        if rate_limit_per_second is not None:
            organization.rate_limit_per_second = rate_limit_per_second
        if daily_quota is not None:
            organization.daily_quota = daily_quota
        await session.flush()
        return {
            **org_row(organization),
            "rate_limit_per_second": organization.rate_limit_per_second,
            "daily_quota": organization.daily_quota,
        }

    print_rows([run_in_session(operation)], ["id", "name", "rate_limit_per_second", "daily_quota"], as_json=as_json)


@audit_app.callback(invoke_without_command=True)
def audit(
    ctx: typer.Context,
    org: Annotated[str | None, typer.Option(help="Organization id or name (default: every organization).")] = None,
    key: Annotated[str | None, typer.Option(help="Only events of this key id.")] = None,
    action: Annotated[str | None, typer.Option(help="Only this action, e.g. key.revoked or auth.failed.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=10_000)] = 100,
    as_json: JsonOption = False,
) -> None:
    """Show the audit log, newest first."""
    if ctx.invoked_subcommand is not None:
        return

    async def operation(session: AsyncSession, _settings: Settings) -> list[dict[str, Any]]:
        organization_id = (await store.get_organization(session, ref=org)).id if org else None
        events = await list_audit_events(
            session, organization_id=organization_id, limit=limit, action=action, key_id=key
        )
        return [
            {
                "id": event.id,
                "created_at": iso(event.created_at),
                "organization_id": event.organization_id,
                "actor": event.actor,
                "action": event.action,
                "key_id": event.key_id,
                "source": event.source,
                "details": json.dumps(event.details) if event.details and not as_json else event.details,
            }
            for event in events
        ]

    columns = ["id", "created_at", "organization_id", "actor", "action", "key_id", "source", "details"]
    print_rows(run_in_session(operation), columns, as_json=as_json)
