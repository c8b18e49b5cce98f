"""`capgate db …`: the database schema."""

from __future__ import annotations

import typer
from sqlalchemy.ext.asyncio import AsyncSession

from server.cli.common import out, run_in_session
from server.settings import Settings

app = typer.Typer(help="Database schema.", no_args_is_help=True)


@app.command("upgrade")
def db_upgrade() -> None:
    """Apply every pending migration."""

    async def operation(_session: AsyncSession, _settings: Settings) -> None:
        return None

    run_in_session(operation, migrate=True)
    out.print("Database is up to date.")
