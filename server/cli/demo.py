"""First run: a demo organization and key, so `make serve` ends with something to try."""

from __future__ import annotations

import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncSession

from auth.hashing import SecretHasher
from auth.keys import random_base62
from auth.scopes import RUNTIME
from auth.store import count_organizations, create_api_key, create_organization, create_user

DEMO_ORGANIZATION = "demo"
DEMO_KEY_NAME = "demo key"
DEMO_OWNER_EMAIL = "owner@demo.example"


@dataclass(frozen=True)
class Demo:
    key: str
    owner_email: str
    owner_password: str


async def create_demo_if_first_run(session: AsyncSession, *, hasher: SecretHasher) -> Demo | None:
    """The demo organization, its owner and a runtime key on the very first run; None on every later one."""
    if await count_organizations(session):
        return None
    organization = await create_organization(session, name=DEMO_ORGANIZATION)
    password = random_base62(20)
    await create_user(
        session, organization=organization, email=DEMO_OWNER_EMAIL, password=password, role="owner", hasher=hasher
    )
    created = await create_api_key(
        session, organization=organization, name=DEMO_KEY_NAME, scopes=[RUNTIME], hasher=hasher, created_by="cli:init"
    )
    return Demo(key=created.secret, owner_email=DEMO_OWNER_EMAIL, owner_password=password)


def demo_instructions(demo: Demo, base_url: str, cli: str) -> str:
    return "\n".join(
        [
            "",
            "Created the demo organization, its owner and an API key. They are shown only this once:",
            "",
            f"    export CAPGATE_API_KEY={demo.key}",
            f"    export CAPGATE_OWNER='{demo.owner_email}:{demo.owner_password}'  # owner's email:password",
            "",
            "Try it:",
            f'    curl -H "x-api-key: $CAPGATE_API_KEY" {base_url}/capabilities',
            "",
            "Add it to Claude Code (single quotes: Claude Code stores the variable, not the key):",
            f"    claude mcp add --transport http capgate {base_url}/mcp "
            "--header 'Authorization: Bearer ${CAPGATE_API_KEY}'",
            "",
            f"Other MCP clients: {cli} config --list, then {cli} config CLIENT",
            cli_hint(cli),
            "",
        ]
    )


def cli_command() -> str:
    """How the user can run this very `capgate`: the bare name when it is on PATH, else a path to it."""
    script = Path(sys.argv[0]).resolve() if sys.argv and sys.argv[0] else None
    on_path = shutil.which("capgate")
    if script is None or script.name != "capgate" or (on_path and Path(on_path).resolve() == script):
        return "capgate"
    try:
        return str(script.relative_to(Path.cwd()))
    except ValueError:
        return str(script)


def cli_hint(cli: str) -> str:
    if cli == "capgate":
        return "The capgate CLI is on your PATH: capgate --help"
    venv_bin = Path(cli).parent
    return f"The capgate CLI is {cli} (or run `source {venv_bin / 'activate'}` once, then just `capgate`)"
