"""`capgate orgs …` and `capgate users …`: organizations and the people in them."""

from __future__ import annotations

import sys
from typing import Annotated, Any

import typer
from sqlalchemy.ext.asyncio import AsyncSession

from auth import store
from server.cli.common import (
    CLI_ACTOR,
    JsonOption,
    LimitOption,
    OrgOption,
    camel,
    fail,
    hasher_for,
    org_row,
    out,
    print_rows,
    run_in_session,
    user_row,
)
from server.settings import Settings

orgs_app = typer.Typer(help="Organizations.", no_args_is_help=True)
users_app = typer.Typer(help="Users of an organization.", no_args_is_help=True)
ORG_COLUMNS = ["id", "name", "mode", "createdAt", "rateLimitPerSecond", "dailyQuota"]
USER_COLUMNS = ["id", "email", "role", "createdAt"]


@orgs_app.command("create")
def orgs_create(
    name: str,
    test_mode: Annotated[bool, typer.Option("--test-mode", help="Keys start with cg_test_.")] = False,
    as_json: JsonOption = False,
) -> None:
    """Create an organization."""

    async def operation(session: AsyncSession, _settings: Settings) -> dict[str, Any]:
        return org_row(await store.create_organization(session, name=name, mode="test" if test_mode else "live"))

    print_rows([run_in_session(operation)], ORG_COLUMNS, as_json=as_json)


@orgs_app.command("list")
def orgs_list(as_json: JsonOption = False) -> None:
    """List organizations."""

    async def operation(session: AsyncSession, _settings: Settings) -> list[dict[str, Any]]:
        return [org_row(org) for org in await store.list_organizations(session)]

    print_rows(run_in_session(operation), ORG_COLUMNS, as_json=as_json)


@orgs_app.command("update")
def orgs_update(
    org: str,
    rate_limit_per_second: LimitOption = None,
    daily_quota: LimitOption = None,
    clear_limits: Annotated[bool, typer.Option("--clear-limits", help="Use the server defaults.")] = False,
    as_json: JsonOption = False,
) -> None:
    """Set an organization's rate limits, the default for its keys."""

    async def operation(session: AsyncSession, _settings: Settings) -> tuple[dict[str, Any], list[str]]:
        organization = await store.get_organization(session, ref=org)
        changed = await store.update_organization_limits(
            session,
            organization=organization,
            rate_limit_per_second=rate_limit_per_second,
            daily_quota=daily_quota,
            clear=clear_limits,
            actor=CLI_ACTOR,
            source="cli",
        )
        return org_row(organization), [camel(name) for name in changed]

    row, changed = run_in_session(operation)
    print_rows([row], ORG_COLUMNS, as_json=as_json)
    if not as_json:
        out.print(f"Changed: {', '.join(changed)}." if changed else "Nothing to change.", markup=False)


@users_app.command("create")
def users_create(
    org: OrgOption,
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

    print_rows([run_in_session(operation)], USER_COLUMNS, as_json=as_json)


@users_app.command("list")
def users_list(org: OrgOption, as_json: JsonOption = False) -> None:
    """List the users of an organization."""

    async def operation(session: AsyncSession, _settings: Settings) -> list[dict[str, Any]]:
        organization = await store.get_organization(session, ref=org)
        return [user_row(user) for user in await store.list_users(session, organization_id=organization.id)]

    print_rows(run_in_session(operation), USER_COLUMNS, as_json=as_json)
