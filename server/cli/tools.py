"""`capgate tools list|enable|disable`: which tools an organization has enabled."""

from __future__ import annotations

from typing import Any

import typer
from sqlalchemy.ext.asyncio import AsyncSession

from auth import store
from server.cli.common import JsonOption, OrgOption, fail, out, print_rows, run_in_session
from server.settings import Settings

app = typer.Typer(help="Tools, and which an organization has enabled.", no_args_is_help=True)


def tool_rows(disabled: frozenset[str], settings: Settings) -> list[dict[str, Any]]:
    from server.wiring import memory_limits
    from tools.catalog import default_registry

    registry = default_registry(memory_limits(settings))
    rows: list[dict[str, Any]] = [
        {
            "name": tool.name,
            "kind": tool.kind,
            "readOnly": tool.read_only,
            "enabled": tool.name not in disabled,
            "description": tool.description,
        }
        for tool in registry.all()
    ]
    skipped = [
        {
            "name": plugin.name,
            "kind": "skipped",
            "read_only": None,
            "enabled": False,
            "description": f"not loaded ({plugin.origin}): {plugin.reason}",
        }
        for plugin in registry.skipped
    ]
    return rows + skipped


TOOL_COLUMNS = ["name", "kind", "readOnly", "enabled", "description"]


@app.command("list")
def tools_list(org: OrgOption, as_json: JsonOption = False) -> None:
    """List every installed tool and whether the organization has it enabled."""
    from tools.switches import disabled_tools

    async def operation(session: AsyncSession, settings: Settings) -> list[dict[str, Any]]:
        organization = await store.get_organization(session, ref=org)
        return tool_rows(await disabled_tools(session, organization_id=organization.id), settings)

    print_rows(run_in_session(operation), TOOL_COLUMNS, as_json=as_json)


def _switch_tool(name: str, org: str, enabled: bool, *, as_json: bool) -> None:
    from server.integrations.accounts import integration_tool_names
    from tools.switches import disabled_tools, store_tool_enabled

    async def operation(session: AsyncSession, settings: Settings) -> tuple[str, dict[str, Any]]:
        organization = await store.get_organization(session, ref=org)
        known = {row["name"] for row in tool_rows(frozenset(), settings) if row["kind"] != "skipped"}
        known |= await integration_tool_names(session, organization_id=organization.id)
        if name not in known:
            raise fail(f"unknown tool {name!r} (installed: {', '.join(sorted(known))})")
        await store_tool_enabled(session, organization_id=organization.id, tool_name=name, enabled=enabled)
        rows = tool_rows(await disabled_tools(session, organization_id=organization.id), settings)
        upstream = {"name": name, "kind": "integration", "readOnly": None, "enabled": enabled, "description": ""}
        return organization.name, next((row for row in rows if row["name"] == name), upstream)

    organization_name, row = run_in_session(operation)
    print_rows([row], TOOL_COLUMNS, as_json=as_json)
    if not as_json:
        state = "enabled" if enabled else "disabled"
        out.print(f"{name} is {state} for {organization_name} (running servers notice within seconds).", markup=False)


@app.command("enable")
def tools_enable(name: str, org: OrgOption, as_json: JsonOption = False) -> None:
    """Enable a tool for an organization (every tool is enabled until disabled)."""
    _switch_tool(name, org, True, as_json=as_json)


@app.command("disable")
def tools_disable(name: str, org: OrgOption, as_json: JsonOption = False) -> None:
    """Disable a tool for an organization: it disappears from its listings and answers 404 when called."""
    _switch_tool(name, org, False, as_json=as_json)
