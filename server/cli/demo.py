"""First run: a demo organization and key, so `make serve` ends with something to try."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from auth.hashing import SecretHasher
from auth.scopes import RUNTIME
from auth.store import CreatedKey, count_organizations, create_api_key, create_organization

DEMO_ORGANIZATION = "demo"
DEMO_KEY_NAME = "demo key"


async def create_demo_if_first_run(session: AsyncSession, *, hasher: SecretHasher) -> CreatedKey | None:
    """The demo key on the very first run (no organization yet); None on every later one."""
    if await count_organizations(session):
        return None
    organization = await create_organization(session, name=DEMO_ORGANIZATION)
    return await create_api_key(
        session, organization=organization, name=DEMO_KEY_NAME, scopes=[RUNTIME], hasher=hasher, created_by="cli:init"
    )


def demo_instructions(key: str, base_url: str) -> str:
    return "\n".join(
        [
            "",
            "Created the demo organization and its API key. It is shown only this once:",
            "",
            f"    export CAPGATE_API_KEY={key}",
            "",
            "Try it:",
            f'    curl -H "x-api-key: $CAPGATE_API_KEY" {base_url}/capabilities',
            "",
            "Add it to Claude Code (single quotes: Claude Code stores the variable, not the key):",
            f"    claude mcp add --transport http capgate {base_url}/mcp "
            "--header 'Authorization: Bearer ${CAPGATE_API_KEY}'",
            "",
            "Other MCP clients: capgate config --list, then capgate config CLIENT",
            "",
        ]
    )
