"""The `capgate` command: one Typer app per command group, assembled here; a thin layer over the
functions the tests call too."""

from __future__ import annotations

import asyncio
import os
from typing import Annotated, Any

import typer
from sqlalchemy.ext.asyncio import AsyncSession

from server.cli import audit, db, decisions, integrations, keys, orgs, retention, tools
from server.cli.common import hasher_for, out, run_in_session
from server.cli.config import config
from server.cli.demo import Demo, cli_command, create_demo_if_first_run, demo_instructions
from server.cli.failures import describe_failure
from server.cli.preflight import ensure_port_free
from server.db import create_engine
from server.migrate import upgrade_database
from server.pepper import load_or_create_pepper
from server.settings import Settings

app = typer.Typer(
    help="capgate: an MCP gateway that hands AI agents tools, scoped per API key.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,  # failures are one line (server/cli/failures.py); --debug shows the traceback
)
app.add_typer(db.app, name="db")
app.add_typer(orgs.orgs_app, name="orgs")
app.add_typer(orgs.users_app, name="users")
app.add_typer(keys.app, name="keys")
app.add_typer(tools.app, name="tools")
app.add_typer(audit.audit_app, name="audit")
app.add_typer(integrations.integrations_app, name="integrations")
app.add_typer(integrations.accounts_app, name="accounts")
app.add_typer(integrations.secrets_app, name="secrets")
app.command("config")(config)
decisions.register()  # `audit decisions` and `keys explain` on the groups above
retention.register()  # `db purge` and `db usage`


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

    overrides: dict[str, Any] = {
        k: v for k, v in {"host": host, "port": port, "workers": workers}.items() if v is not None
    }
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
