"""`capgate keys …`: create, list, show, rotate, update and revoke API keys."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

import typer
from sqlalchemy.ext.asyncio import AsyncSession

from auth import store
from auth.dbtypes import utcnow
from auth.lifecycle import KeyChanges, rotate_api_key, update_api_key
from server.cli.common import (
    CLI_ACTOR,
    JsonOption,
    LimitOption,
    OrgOption,
    camel,
    fail,
    hasher_for,
    key_row,
    out,
    parse_duration,
    print_json,
    print_record,
    print_rows,
    run_in_session,
)
from server.settings import Settings

app = typer.Typer(help="API keys.", no_args_is_help=True)
KEY_COLUMNS = ["id", "name", "prefix", "scopes", "allowedTools", "expiresAt", "revokedAt"]


def print_secret(row: dict[str, Any], secret: str, *, as_json: bool, note: str = "") -> None:
    """The new key's metadata and, only this once, its secret."""
    if as_json:
        print_json({**row, "key": secret})
        return
    print_rows([row], KEY_COLUMNS, as_json=False)
    if note:
        out.print(f"\n{note}", markup=False)
    out.print("\nThe key, shown only this once:\n", markup=False)
    out.print(f"    {secret}\n", markup=False)


@app.command("create")
def keys_create(
    org: OrgOption,
    name: Annotated[str, typer.Option(help="A name that says who uses the key.")],
    scope: Annotated[list[str] | None, typer.Option(help="runtime, runtime:read, keys:manage or *.")] = None,
    allowed_tool: Annotated[list[str] | None, typer.Option(help="Tool-name glob the key is limited to.")] = None,
    expires_in: Annotated[str | None, typer.Option(help="Lifetime such as 90d, 12h or 30m.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Create an API key. Its secret is printed once and never stored."""
    expires_at = utcnow() + parse_duration(expires_in) if expires_in else None

    async def operation(session: AsyncSession, settings: Settings) -> tuple[dict[str, Any], str]:
        organization = await store.get_organization(session, ref=org)
        created = await store.create_api_key(
            session,
            organization=organization,
            name=name,
            scopes=scope or ["runtime"],
            allowed_tools=allowed_tool,
            expires_at=expires_at,
            hasher=hasher_for(settings),
            created_by=CLI_ACTOR,
            source="cli",
        )
        return key_row(created.record), created.secret

    row, secret = run_in_session(operation)
    print_secret(row, secret, as_json=as_json)


@app.command("list")
def keys_list(
    org: OrgOption,
    active: Annotated[bool, typer.Option("--active", help="Leave out revoked keys.")] = False,
    as_json: JsonOption = False,
) -> None:
    """List an organization's keys (metadata only)."""

    async def operation(session: AsyncSession, _settings: Settings) -> list[dict[str, Any]]:
        organization = await store.get_organization(session, ref=org)
        keys = await store.list_api_keys(session, organization_id=organization.id, include_revoked=not active)
        return [key_row(key) for key in keys]

    print_rows(run_in_session(operation), KEY_COLUMNS, as_json=as_json)


@app.command("show")
def keys_show(key_id: str, as_json: JsonOption = False) -> None:
    """Show one key's metadata."""

    async def operation(session: AsyncSession, _settings: Settings) -> dict[str, Any]:
        return key_row(await store.get_api_key(session, key_id=key_id))

    print_record(run_in_session(operation), as_json=as_json)


@app.command("revoke")
def keys_revoke(
    key_id: str,
    terminate_streams: Annotated[
        bool, typer.Option("--terminate-streams", help="Also close the key's open streams (for a leaked key).")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Revoke a key: every new request with it is rejected; open streams run to their end unless terminated."""

    async def operation(session: AsyncSession, _settings: Settings) -> dict[str, Any]:
        revoked = await store.revoke_api_key(
            session, key_id=key_id, actor=CLI_ACTOR, source="cli", terminate_streams=terminate_streams
        )
        return key_row(revoked)

    row = run_in_session(operation)
    print_rows([row], KEY_COLUMNS, as_json=as_json)
    if not as_json:
        out.print(f"Revoked {row['id']} ({row['name']}) at {row['revokedAt']}.", markup=False)
        if terminate_streams:
            out.print("Its open streams are being closed on every server (within about a second).", markup=False)


@app.command("rotate")
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
    note = f"{old['id']} keeps working until {old['expiresAt']}."
    print_secret({**row, "replaces": old} if as_json else row, secret, as_json=as_json, note=note)


@app.command("update")
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
        changes.scopes = scope
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
        return {**key_row(record), "changed": [camel(name) for name in changes.changed]}

    row = run_in_session(operation)
    if as_json:
        print_json(row)
        return
    print_rows([row], [*KEY_COLUMNS, "rateLimitPerSecond", "dailyQuota"], as_json=False)
    if row["changed"]:
        out.print(f"Updated {row['id']}: {', '.join(row['changed'])}.", markup=False)
    else:
        out.print(f"Nothing to change on {row['id']}.", markup=False)
