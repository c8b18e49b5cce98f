"""`capgate audit`: the audit log, newest first."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from sqlalchemy.ext.asyncio import AsyncSession

from auth import store
from auth.audit import list_audit_events
from server.cli.common import JsonOption, audit_row, print_rows, run_in_session
from server.settings import Settings

audit_app = typer.Typer(help="The audit log, and `audit decisions` for authorization decisions.")
AUDIT_COLUMNS = ["id", "createdAt", "organizationId", "actor", "action", "keyId", "source", "details"]


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
        return [audit_row(event) for event in events]

    print_rows(run_in_session(operation), AUDIT_COLUMNS, as_json=as_json)
