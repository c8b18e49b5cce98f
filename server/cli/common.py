"""What every command group shares: settings and one transaction per command, errors as one line, output.

Tables are for people (lists as comma-separated words, no Python reprs); ``--json`` prints the same
camelCase fields as the HTTP API, so scripts can use either.
"""

from __future__ import annotations

import asyncio
import json
import re
import shutil
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import timedelta
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy.ext.asyncio import AsyncSession

from auth.dbtypes import iso
from auth.errors import CapgateError
from auth.hashing import SecretHasher
from auth.models import ApiKey, AuditEvent, Organization, User
from server.cli.preflight import ensure_database_exists, ensure_database_migrated
from server.db import create_engine, session_factory
from server.migrate import upgrade_database
from server.routes.key_wire import audit_public, key_public
from server.settings import Settings

T = TypeVar("T")
out = Console(highlight=False, soft_wrap=True, width=shutil.get_terminal_size((160, 24)).columns)
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]
OrgOption = Annotated[str, typer.Option(help="Organization id or name.")]
LimitOption = Annotated[int | None, typer.Option(min=1, help="Override; see --clear-limits to remove.")]
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


def cell(value: Any) -> str:
    """One table cell in words: lists comma-separated, mappings as ``name: value``, nothing for None."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list | tuple):
        return ", ".join(cell(item) for item in value)
    if isinstance(value, Mapping):
        return ", ".join(f"{name}: {cell(item)}" for name, item in value.items())
    return str(value)


def camel(name: str) -> str:
    """A stored field's name as the HTTP API spells it: ``allowed_tools`` → ``allowedTools``."""
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def heading(field: str) -> str:
    return re.sub(r"(?<!^)([A-Z])", r" \1", field).lower()


def print_json(value: Any) -> None:
    out.print(json.dumps(value, indent=2), markup=False)


def print_rows(rows: Sequence[Mapping[str, Any]], columns: Sequence[str], *, as_json: bool) -> None:
    if as_json:
        print_json(list(rows))
        return
    table = Table(*(heading(column) for column in columns))
    for row in rows:
        table.add_row(*(cell(row.get(column)) for column in columns))
    out.print(table)


def print_record(row: Mapping[str, Any], *, as_json: bool) -> None:
    """One record as a two-column table (field, value), or its JSON."""
    if as_json:
        print_json(row)
        return
    table = Table("field", "value")
    for field, value in row.items():
        table.add_row(heading(field), cell(value))
    out.print(table)


def org_row(org: Organization) -> dict[str, Any]:
    return {
        "id": org.id,
        "name": org.name,
        "mode": org.mode,
        "createdAt": iso(org.created_at),
        "rateLimitPerSecond": org.rate_limit_per_second,
        "dailyQuota": org.daily_quota,
    }


def user_row(user: User) -> dict[str, Any]:
    return {"id": user.id, "email": user.email, "role": user.role, "createdAt": iso(user.created_at)}


def key_row(key: ApiKey) -> dict[str, Any]:
    return {
        "organizationId": key.organization_id,
        **key_public(key, last_used_at=key.last_used_at),
        "policyRevision": key.policy_revision,
    }


def audit_row(event: AuditEvent) -> dict[str, Any]:
    return {**audit_public(event), "organizationId": event.organization_id}


_DURATION = re.compile(r"^(\d+)([smhdw])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_duration(text: str) -> timedelta:
    match = _DURATION.match(text.strip())
    if not match or int(match.group(1)) == 0:
        raise fail(f"invalid duration {text!r}: use a positive number and a unit, e.g. 90d, 12h, 30m")
    return timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})
