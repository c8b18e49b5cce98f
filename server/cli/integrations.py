"""`capgate integrations|accounts|secrets`: an organization's upstream MCP servers and connected accounts."""

from __future__ import annotations

import shlex
import sys
from typing import Annotated, Any

import typer
from sqlalchemy.ext.asyncio import AsyncSession

from auth import store as org_store
from server.cli.common import CLI_ACTOR, JsonOption, OrgOption, fail, out, print_rows, run_in_session
from server.integrations import accounts, store
from server.integrations.catalog import listing_of, target_of
from server.integrations.models import ConnectedAccount, Integration
from server.integrations.pool import UpstreamUnavailable, probe_tools
from server.integrations.vault import Vault, add_key_to_file, load_vault
from server.settings import Settings

integrations_app = typer.Typer(help="Upstream MCP servers an organization uses.", no_args_is_help=True)
accounts_app = typer.Typer(help="Connected accounts: one credential each for an integration.", no_args_is_help=True)
secrets_app = typer.Typer(help="The data keys that seal stored credentials.", no_args_is_help=True)
INTEGRATION_COLUMNS = ["id", "title", "transport", "endpoint", "accounts"]
ACCOUNT_COLUMNS = ["id", "integration", "label", "status", "tools", "last_error"]


def vault_of(settings: Settings) -> Vault:
    return load_vault(settings.data_dir, settings.secret_key.get_secret_value() if settings.secret_key else None)


def integration_row(row: Integration, account_count: int) -> dict[str, Any]:
    endpoint = row.url if row.transport == "http" else shlex.join(row.command or [])
    return {
        "id": row.id,
        "title": row.title,
        "transport": row.transport,
        "endpoint": endpoint,
        "accounts": account_count,
    }


def account_row(row: ConnectedAccount) -> dict[str, Any]:
    return {
        "id": row.id,
        "integration": row.integration_id,
        "label": row.label,
        "status": row.status,
        "tools": len(row.tools or ()),
        "last_error": row.last_error,
    }


@integrations_app.command("add")
def integrations_add(
    integration_id: Annotated[str, typer.Argument(help="Lower-case id, the prefix of its tools (github, crm).")],
    org: OrgOption,
    url: Annotated[str | None, typer.Option(help="Streamable HTTP endpoint of the upstream.")] = None,
    command: Annotated[str | None, typer.Option(help="Command line that starts a stdio upstream.")] = None,
    title: Annotated[str | None, typer.Option(help="Display name.")] = None,
    header: Annotated[str, typer.Option(help="HTTP header the credential goes in.")] = "Authorization",
    template: Annotated[str, typer.Option(help="Header value; {secret} is the credential.")] = "Bearer {secret}",
    env: Annotated[str | None, typer.Option(help="Environment variable a stdio upstream reads.")] = None,
    timeout: Annotated[float, typer.Option(help="Seconds per upstream call.")] = 60.0,
    as_json: JsonOption = False,
) -> None:
    """Add an upstream MCP server (by --url, or by --command run as a subprocess) to an organization."""
    if (url is None) == (command is None):
        raise fail("give exactly one of --url or --command")

    async def operation(session: AsyncSession, _settings: Settings) -> dict[str, Any]:
        organization = await org_store.get_organization(session, ref=org)
        row = await store.create_integration(
            session,
            organization_id=organization.id,
            integration_id=integration_id,
            title=title,
            transport="http" if url else "stdio",
            url=url,
            command=shlex.split(command) if command else None,
            credential_header=header,
            credential_template=template,
            credential_env=env,
            timeout_seconds=timeout,
            url_from_operator=True,
            actor=CLI_ACTOR,
        )
        return integration_row(row, 0)

    print_rows([run_in_session(operation)], INTEGRATION_COLUMNS, as_json=as_json)


@integrations_app.command("list")
def integrations_list(org: OrgOption, as_json: JsonOption = False) -> None:
    """List an organization's integrations."""

    async def operation(session: AsyncSession, _settings: Settings) -> list[dict[str, Any]]:
        organization = await org_store.get_organization(session, ref=org)
        rows = await store.list_integrations(session, organization_id=organization.id)
        connected = await accounts.list_accounts(session, organization_id=organization.id)
        return [integration_row(row, sum(a.integration_id == row.id for a in connected)) for row in rows]

    print_rows(run_in_session(operation), INTEGRATION_COLUMNS, as_json=as_json)


@integrations_app.command("remove")
def integrations_remove(integration_id: str, org: OrgOption) -> None:
    """Remove an integration and every account connected to it."""

    async def operation(session: AsyncSession, _settings: Settings) -> None:
        organization = await org_store.get_organization(session, ref=org)
        await store.delete_integration(
            session, organization_id=organization.id, integration_id=integration_id, actor=CLI_ACTOR
        )

    run_in_session(operation)
    out.print(f"Removed {integration_id} (running servers drop its tools within seconds).", markup=False)


def read_secret(secret_stdin: bool) -> str:
    if secret_stdin:
        return sys.stdin.read().strip()
    return str(typer.prompt("Credential", hide_input=True))


async def refresh_listing(session: AsyncSession, row: ConnectedAccount, vault: Vault) -> str | None:
    """Lists the account's upstream tools and keeps the listing; returns the error, if any."""
    integration = await store.get_integration(
        session, organization_id=row.organization_id, integration_id=row.integration_id
    )
    try:
        tools = await probe_tools(target_of(integration, row, vault))
    except UpstreamUnavailable as error:
        await accounts.record_health(session, account_id=row.id, status="error", error=error.message)
        return error.message
    await accounts.store_tool_listing(session, account_id=row.id, tools=listing_of(tools))
    await accounts.record_health(session, account_id=row.id, status="ok", error=None)
    return None


@accounts_app.command("connect")
def accounts_connect(
    integration_id: str,
    org: OrgOption,
    label: Annotated[str, typer.Option(help="Which account this is (sales@acme).")],
    secret_stdin: Annotated[bool, typer.Option("--secret-stdin", help="Read the credential from stdin.")] = False,
    as_json: JsonOption = False,
) -> None:
    """Connect an account (one credential) to an integration; its upstream tools are listed at once."""
    credential = read_secret(secret_stdin)

    async def operation(session: AsyncSession, settings: Settings) -> tuple[dict[str, Any], str | None]:
        organization = await org_store.get_organization(session, ref=org)
        vault = vault_of(settings)
        row = await accounts.connect_account(
            session,
            organization_id=organization.id,
            integration_id=integration_id,
            label=label,
            credential=credential,
            vault=vault,
            actor=CLI_ACTOR,
        )
        await session.flush()
        error = await refresh_listing(session, row, vault)
        return account_row(row), error

    row, error = run_in_session(operation)
    print_rows([row], ACCOUNT_COLUMNS, as_json=as_json)
    if error:
        typer.echo(f"warning: connected, but the upstream did not answer: {error}", err=True)


@accounts_app.command("list")
def accounts_list(
    org: OrgOption,
    integration: Annotated[str | None, typer.Option(help="Only this integration's accounts.")] = None,
    as_json: JsonOption = False,
) -> None:
    """List an organization's connected accounts (never their credentials)."""

    async def operation(session: AsyncSession, _settings: Settings) -> list[dict[str, Any]]:
        organization = await org_store.get_organization(session, ref=org)
        rows = await accounts.list_accounts(session, organization_id=organization.id, integration_id=integration)
        return [account_row(row) for row in rows]

    print_rows(run_in_session(operation), ACCOUNT_COLUMNS, as_json=as_json)


@accounts_app.command("test")
def accounts_test(account_id: str, org: OrgOption, as_json: JsonOption = False) -> None:
    """Connect to the account's upstream and list its tools."""

    async def operation(session: AsyncSession, settings: Settings) -> tuple[dict[str, Any], str | None]:
        organization = await org_store.get_organization(session, ref=org)
        row = await accounts.get_account(session, organization_id=organization.id, account_id=account_id)
        error = await refresh_listing(session, row, vault_of(settings))
        return account_row(row), error

    row, error = run_in_session(operation)
    print_rows([row], ACCOUNT_COLUMNS, as_json=as_json)
    if error:
        raise fail(error)


def _set_status(account_id: str, org: str, status: str) -> None:
    async def operation(session: AsyncSession, _settings: Settings) -> None:
        organization = await org_store.get_organization(session, ref=org)
        await accounts.update_account(
            session, organization_id=organization.id, account_id=account_id, actor=CLI_ACTOR, status=status
        )

    run_in_session(operation)
    out.print(f"{account_id} is {status} (running servers notice within seconds).", markup=False)


@accounts_app.command("disable")
def accounts_disable(account_id: str, org: OrgOption) -> None:
    """Disable an account: its tools no longer list it and calls cannot choose it."""
    _set_status(account_id, org, "disabled")


@accounts_app.command("enable")
def accounts_enable(account_id: str, org: OrgOption) -> None:
    """Enable a disabled account again."""
    _set_status(account_id, org, "ok")


@accounts_app.command("remove")
def accounts_remove(account_id: str, org: OrgOption) -> None:
    """Remove a connected account and its stored credential."""

    async def operation(session: AsyncSession, _settings: Settings) -> None:
        organization = await org_store.get_organization(session, ref=org)
        await accounts.delete_account(session, organization_id=organization.id, account_id=account_id, actor=CLI_ACTOR)

    run_in_session(operation)
    out.print(f"Removed {account_id}.", markup=False)


@secrets_app.command("rotate")
def secrets_rotate() -> None:
    """Re-seal every stored credential under a new data key (a new generated key, or the first of
    CAPGATE_SECRET_KEY when it is set: put the new key first and keep the old one after it)."""

    async def operation(session: AsyncSession, settings: Settings) -> tuple[str, int]:
        vault = vault_of(settings) if settings.secret_key else add_key_to_file(settings.data_dir)
        count = await accounts.rotate_credentials(session, vault=vault, actor=CLI_ACTOR)
        return vault.current_key_id, count

    key_id, count = run_in_session(operation)
    out.print(f"{count} credentials re-sealed under data key {key_id}.", markup=False)
