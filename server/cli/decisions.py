"""`capgate audit decisions` and `capgate keys explain`: the decision log, and a decision asked for."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import typer
from sqlalchemy.ext.asyncio import AsyncSession

from auth import store
from auth.dbtypes import iso, utcnow
from server.cli.audit import audit_app
from server.cli.common import JsonOption, fail, out, print_json, print_rows, run_in_session
from server.cli.keys import app as keys_app
from server.observability.explain import Explanation, explain_tool
from server.observability.queries import aware_time, list_decisions
from server.settings import Settings

DECISION_COLUMNS = ["id", "time", "organizationId", "keyId", "route", "tool", "outcome", "reason", "rule", "revision"]


def parse_time(text: str | None) -> datetime | None:
    if text is None:
        return None
    try:
        return aware_time(text)
    except ValueError:
        raise fail(f"invalid time {text!r}: use ISO 8601, e.g. 2026-12-01T14:00:00Z") from None


def audit_decisions(
    org: Annotated[str | None, typer.Option(help="Organization id or name (default: every organization).")] = None,
    key: Annotated[str | None, typer.Option(help="Only decisions about this key id.")] = None,
    tool: Annotated[str | None, typer.Option(help="Only decisions about this tool.")] = None,
    outcome: Annotated[str | None, typer.Option(help="allowed or refused.")] = None,
    since: Annotated[str | None, typer.Option(help="At or after this ISO 8601 time.")] = None,
    until: Annotated[str | None, typer.Option(help="Before this ISO 8601 time.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=10_000)] = 100,
    as_json: JsonOption = False,
) -> None:
    """Show authorization decisions, newest first: who called what, the outcome and the rule that decided."""
    if outcome is not None and outcome not in ("allowed", "refused"):
        raise fail("--outcome must be allowed or refused")
    since_at, until_at = parse_time(since), parse_time(until)

    async def operation(session: AsyncSession, _settings: Settings) -> list[dict[str, Any]]:
        organization_id = (await store.get_organization(session, ref=org)).id if org else None
        rows = await list_decisions(
            session,
            organization_id=organization_id,
            limit=limit,
            key_id=key,
            tool=tool,
            outcome=outcome,
            since=since_at,
            until=until_at,
        )
        return [
            {
                "id": row.id,
                "time": iso(row.created_at),
                "organizationId": row.organization_id,
                "keyId": row.key_id,
                "requestId": row.request_id,
                "route": row.route,
                "tool": row.tool,
                "outcome": row.outcome,
                "reason": row.reason,
                "rule": row.rule,
                "revision": row.policy_revision,
                "count": row.count,
            }
            for row in rows
        ]

    print_rows(run_in_session(operation), DECISION_COLUMNS, as_json=as_json)


def keys_explain(key_id: str, tool: str, as_json: JsonOption = False) -> None:
    """Say whether the key may call the tool now, and which rule says so (the runtime's own decision).

    Built-in and plugin tools; for a connected integration's tools ask GET /api/keys/{id}/explain."""
    from server.wiring import memory_limits
    from tools.catalog import default_registry
    from tools.switches import disabled_tools

    async def operation(session: AsyncSession, settings: Settings) -> Explanation:
        key = await store.get_api_key(session, key_id=key_id)
        disabled = await disabled_tools(session, organization_id=key.organization_id)
        registry = default_registry(memory_limits(settings))
        return explain_tool(key=key, tool_name=tool, tools=registry, disabled=disabled, now=utcnow())

    explanation = run_in_session(operation)
    if as_json:
        print_json(explanation.public())
        return
    verdict = "may call" if explanation.allowed else "may not call"
    out.print(f"{key_id} {verdict} {tool} ({explanation.reason}): {explanation.rule}", markup=False)
    out.print(f"policy revision {explanation.policy_revision}", markup=False)


def register() -> None:
    audit_app.command("decisions")(audit_decisions)
    keys_app.command("explain")(keys_explain)
