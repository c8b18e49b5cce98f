"""`capgate db …`: the database schema."""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer

from server.cli.common import TYPER_OPTIONS, out, run_in_session

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from server.settings import Settings

app = typer.Typer(help="Database schema.", **TYPER_OPTIONS)


@app.command("upgrade")
def db_upgrade() -> None:
    """Apply every pending migration."""

    async def operation(_session: AsyncSession, _settings: Settings) -> None:
        return None

    run_in_session(operation, migrate=True)
    out.print("Database is up to date.")
