"""The `capgate` command: a thin layer over the functions the tests call too."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import sys
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime, timedelta
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy.ext.asyncio import AsyncSession

from auth import store
from auth.dbtypes import utcnow
from auth.errors import CapgateError
from auth.hashing import SecretHasher
from auth.models import ApiKey, Organization, User
from server.cli.config import config
from server.cli.demo import Demo, cli_command, create_demo_if_first_run, demo_instructions
from server.cli.failures import describe_failure
from server.cli.preflight import ensure_database_exists, ensure_database_migrated, ensure_port_free
from server.db import create_engine, session_factory
from server.migrate import upgrade_database
from server.pepper import load_or_create_pepper
from server.settings import Settings

T = TypeVar("T")
app = typer.Typer(
    help="capgate: an MCP gateway that hands AI agents tools, scoped per API key.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,  # failures are one line (server/cli/failures.py); --debug shows the traceback
)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
orgs_app = typer.Typer(help="Organizations.", no_args_is_help=True)
users_app = typer.Typer(help="Users of an organization.", no_args_is_help=True)
keys_app = typer.Typer(help="API keys.", no_args_is_help=True)
tools_app = typer.Typer(help="Tools, and which an organization has enabled.", no_args_is_help=True)
integrations_app = typer.Typer(help="Upstream MCP servers an organization uses.", no_args_is_help=True)
accounts_app = typer.Typer(help="Connected accounts: one credential each for an integration.", no_args_is_help=True)
secrets_app = typer.Typer(help="The data keys that seal stored credentials.", no_args_is_help=True)
audit_app = typer.Typer(help="The audit log, and `audit decisions` for authorization decisions.")
app.add_typer(db_app, name="db")
app.add_typer(orgs_app, name="orgs")
app.add_typer(users_app, name="users")
app.add_typer(keys_app, name="keys")
app.add_typer(tools_app, name="tools")
app.add_typer(integrations_app, name="integrations")
app.add_typer(accounts_app, name="accounts")
app.add_typer(secrets_app, name="secrets")
app.add_typer(audit_app, name="audit")
app.command("config")(config)

out = Console(highlight=False, soft_wrap=True, width=shutil.get_terminal_size((160, 24)).columns)
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]
CLI_ACTOR = "cli"


def fail(message: str) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code=1)


def run_in_session(operation: Callable[[AsyncSession, Settings], Awaitable[T]], *, migrate: bool = False) -> T:
    """Runs one operation in one committed transaction; capgate errors become one-line messages."""
    settings = Settings()
    if not migrate:
        ensure_database_exists(settings.resolved_database_url)

    async def main() -> T:
        engine = create_engine(settings.resolved_database_url)
        try:
            if migrate:
                await upgrade_database(engine)
            else:
                await ensure_database_migrated(engine)
            async with session_factory(engine).begin() as session:
                return await operation(session, settings)
        finally:
            await engine.dispose()

    try:
        return asyncio.run(main())
    except CapgateError as exc:
        raise fail(exc.message) from None


def hasher_for(settings: Settings) -> SecretHasher:
    return SecretHasher(settings.argon2_parameters)


def iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def print_rows(rows: Sequence[dict[str, Any]], columns: Sequence[str], *, as_json: bool) -> None:
    if as_json:
        out.print(json.dumps(list(rows), indent=2), markup=False)
        return
    table = Table(*columns)
    for row in rows:
        table.add_row(*("" if row.get(c) is None else str(row.get(c)) for c in columns))
    out.print(table)


def org_row(org: Organization) -> dict[str, Any]:
    return {"id": org.id, "name": org.name, "mode": org.mode, "created_at": iso(org.created_at)}


def user_row(user: User) -> dict[str, Any]:
    return {"id": user.id, "email": user.email, "role": user.role, "created_at": iso(user.created_at)}


def key_row(key: ApiKey) -> dict[str, Any]:
    return {
        "id": key.id,
        "organization_id": key.organization_id,
        "name": key.name,
        "prefix": key.display_prefix,
        "scopes": key.scopes,
        "allowed_tools": key.allowed_tools,
        "created_by": key.created_by,
        "created_at": iso(key.created_at),
        "expires_at": iso(key.expires_at),
        "revoked_at": iso(key.revoked_at),
        "last_used_at": iso(key.last_used_at),
        "policy_revision": key.policy_revision,
    }


_DURATION = re.compile(r"^(\d+)([smhdw])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_duration(text: str) -> timedelta:
    match = _DURATION.match(text.strip())
    if not match or int(match.group(1)) == 0:
        raise fail(f"invalid duration {text!r}: use a positive number and a unit, e.g. 90d, 12h, 30m")
    return timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})


@app.command()
def init() -> None:
    """Create or migrate the database; on the very first run also a demo organization and key."""

    async def operation(session: AsyncSession, settings: Settings) -> Demo | None:
        load_or_create_pepper(settings.data_dir, settings.pepper.get_secret_value() if settings.pepper else None)
        return await create_demo_if_first_run(session, hasher=hasher_for(settings))

    demo = run_in_session(operation, migrate=True)
    base_url = Settings().resolved_public_base_url
    if demo:
        out.print(demo_instructions(demo, base_url, cli_command()), markup=False)
    else:
        out.print(f"Database is up to date. capgate will serve on {base_url}", markup=False)


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Bind address (default: CAPGATE_HOST).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default: CAPGATE_PORT).")] = None,
    workers: Annotated[int | None, typer.Option(help="Server processes (default: CAPGATE_WORKERS, 1).", min=1)] = None,
) -> None:
    """Migrate the database and serve the API and MCP endpoint."""
    from server.serving import run_server

    overrides = {k: v for k, v in {"host": host, "port": port, "workers": workers}.items() if v is not None}
    settings = Settings(**overrides)
    ensure_port_free(settings.host, settings.port)

    async def migrate() -> None:
        engine = create_engine(settings.resolved_database_url)
        try:
            await upgrade_database(engine)
        finally:
            await engine.dispose()

    asyncio.run(migrate())
    run_server(settings)


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply every pending migration."""

    async def operation(_session: AsyncSession, _settings: Settings) -> None:
        return None

    run_in_session(operation, migrate=True)
    out.print("Database is up to date.")


@orgs_app.command("create")
def orgs_create(
    name: str,
    test_mode: Annotated[bool, typer.Option("--test-mode", help="Keys start with cg_test_.")] = False,
    as_json: JsonOption = False,
) -> None:
    """Create an organization."""

    async def operation(session: AsyncSession, _settings: Settings) -> dict[str, Any]:
        return org_row(await store.create_organization(session, name=name, mode="test" if test_mode else "live"))

    print_rows([run_in_session(operation)], ["id", "name", "mode", "created_at"], as_json=as_json)


@orgs_app.command("list")
def orgs_list(as_json: JsonOption = False) -> None:
    """List organizations."""

    async def operation(session: AsyncSession, _settings: Settings) -> list[dict[str, Any]]:
        return [org_row(org) for org in await store.list_organizations(session)]

    print_rows(run_in_session(operation), ["id", "name", "mode", "created_at"], as_json=as_json)


@users_app.command("create")
def users_create(
    org: Annotated[str, typer.Option(help="Organization id or name.")],
    email: Annotated[str, typer.Option()],
    role: Annotated[str, typer.Option(help="owner, admin or member.")] = "member",
    password_stdin: Annotated[bool, typer.Option("--password-stdin", help="Read the password from stdin.")] = False,
    as_json: JsonOption = False,
) -> None:
    """Create a user; the password comes from a prompt or stdin, never from an argument."""
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    elif not sys.stdin.isatty():
        raise fail("no terminal to ask for the password: pipe it in with --password-stdin")
    else:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)

    async def operation(session: AsyncSession, settings: Settings) -> dict[str, Any]:
        organization = await store.get_organization(session, ref=org)
        user = await store.create_user(
            session, organization=organization, email=email, password=password, role=role, hasher=hasher_for(settings)
        )
        return user_row(user)

    print_rows([run_in_session(operation)], ["id", "email", "role", "created_at"], as_json=as_json)


@users_app.command("list")
def users_list(org: Annotated[str, typer.Option(help="Organization id or name.")], as_json: JsonOption = False) -> None:
    """List the users of an organization."""

    async def operation(session: AsyncSession, _settings: Settings) -> list[dict[str, Any]]:
        organization = await store.get_organization(session, ref=org)
        return [user_row(user) for user in await store.list_users(session, organization_id=organization.id)]

    print_rows(run_in_session(operation), ["id", "email", "role", "created_at"], as_json=as_json)


KEY_COLUMNS = ["id", "name", "prefix", "scopes", "allowed_tools", "expires_at", "revoked_at"]


@keys_app.command("create")
def keys_create(
    org: Annotated[str, typer.Option(help="Organization id or name.")],
    name: Annotated[str, typer.Option(help="A name that says who uses the key.")],
    scope: Annotated[
        list[str] | None, typer.Option(help="runtime, runtime:read, keys:manage, metrics:read or *.")
    ] = None,
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
    if as_json:
        out.print(json.dumps({**row, "key": secret}, indent=2), markup=False)
        return
    print_rows([row], KEY_COLUMNS, as_json=False)
    out.print("\nThe key, shown only this once:\n", markup=False)
    out.print(f"    {secret}\n", markup=False)


@keys_app.command("list")
def keys_list(
    org: Annotated[str, typer.Option(help="Organization id or name.")],
    active: Annotated[bool, typer.Option("--active", help="Leave out revoked keys.")] = False,
    as_json: JsonOption = False,
) -> None:
    """List an organization's keys (metadata only)."""

    async def operation(session: AsyncSession, _settings: Settings) -> list[dict[str, Any]]:
        organization = await store.get_organization(session, ref=org)
        keys = await store.list_api_keys(session, organization_id=organization.id, include_revoked=not active)
        return [key_row(key) for key in keys]

    print_rows(run_in_session(operation), KEY_COLUMNS, as_json=as_json)


@keys_app.command("show")
def keys_show(key_id: str, as_json: JsonOption = False) -> None:
    """Show one key's metadata."""

    async def operation(session: AsyncSession, _settings: Settings) -> dict[str, Any]:
        return key_row(await store.get_api_key(session, key_id=key_id))

    row = run_in_session(operation)
    if as_json:
        out.print(json.dumps(row, indent=2), markup=False)
        return
    for field, value in row.items():
        out.print(f"{field:>15}: {'' if value is None else value}", markup=False)


@keys_app.command("revoke")
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
    if as_json:
        out.print(json.dumps(row, indent=2), markup=False)
        return
    out.print(f"Revoked {row['id']} ({row['name']}) at {row['revoked_at']}.", markup=False)
    if terminate_streams:
        out.print("Its open streams are being closed on every server (within about a second).", markup=False)


@app.callback()
def root(
    debug: Annotated[
        bool, typer.Option("--debug", help="Show the whole traceback when a command fails (also CAPGATE_DEBUG=1).")
    ] = False,
) -> None:
    """capgate: an MCP gateway that hands AI agents tools, scoped per API key."""
    if debug:
        os.environ["CAPGATE_DEBUG"] = "1"


def main() -> None:
    try:
        app()
    except Exception as exc:
        # Read from the environment, not Settings: the failure may be that the settings themselves are invalid.
        if os.environ.get("CAPGATE_DEBUG", "").lower() in ("1", "true", "yes", "on"):
            raise
        typer.echo(f"error: {describe_failure(exc, database_url=_database_url_for_message())}", err=True)
        raise SystemExit(1) from None


def _database_url_for_message() -> str | None:
    try:
        return Settings().resolved_database_url
    except Exception:  # noqa: BLE001 - only names the database in the message; the settings error is reported itself
        return None


# Registers `keys rotate`, `keys update`, `orgs update` and `audit` on the apps above.
import server.cli.decisions  # noqa: E402, F401
import server.cli.integrations  # noqa: E402, F401
import server.cli.lifecycle  # noqa: E402, F401
import server.cli.tools  # noqa: E402, F401
