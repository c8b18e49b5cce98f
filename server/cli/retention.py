"""`capgate db purge` and `capgate db usage`: retention now, and what each organization stores."""

from __future__ import annotations

import asyncio
import json
from dataclasses import asdict
from typing import Any

from server.cli.common import JsonOption, out
from server.cli.db import app as db_app

KINDS = ("executions", "events", "memory", "audit", "total")


def db_purge(as_json: JsonOption = False) -> None:
    """Delete executions, events, idempotency records and audit rows older than their retention."""
    from auth.dbtypes import utcnow
    from server.cli.preflight import ensure_database_exists, ensure_database_migrated
    from server.db import create_engine, session_factory
    from server.runtime.retention import Purged, purge
    from server.settings import Settings
    from server.wiring import retention_policy

    settings = Settings()
    ensure_database_exists(settings.resolved_database_url)

    async def main() -> Purged:
        engine = create_engine(settings.resolved_database_url)
        try:
            await ensure_database_migrated(engine)
            return await purge(session_factory(engine), retention_policy(settings), utcnow())
        finally:
            await engine.dispose()

    purged = asyncio.run(main())
    if as_json:
        out.print(json.dumps(asdict(purged)), markup=False)
        return
    out.print(
        f"Deleted {purged.executions} executions, {purged.events} events, "
        f"{purged.idempotency_records} idempotency records, {purged.audit_events} audit rows "
        f"and {purged.stream_events} MCP stream events.",
        markup=False,
    )


def db_usage(as_json: JsonOption = False) -> None:
    """Bytes each organization stores: execution records, events, memory documents, audit details."""
    from rich.table import Table
    from sqlalchemy import select
    from sqlmodel import col

    from auth.models import Organization
    from server.cli.preflight import ensure_database_exists, ensure_database_migrated
    from server.db import create_engine, session_factory
    from server.runtime.retention import stored_bytes
    from server.settings import Settings

    settings = Settings()
    ensure_database_exists(settings.resolved_database_url)

    async def main() -> list[dict[str, Any]]:
        engine = create_engine(settings.resolved_database_url)
        try:
            await ensure_database_migrated(engine)
            async with session_factory(engine)() as session:
                usage = await stored_bytes(session)
                names: dict[str, str] = {
                    row.id: row.name
                    for row in (await session.execute(select(col(Organization.id), col(Organization.name)))).all()
                }
        finally:
            await engine.dispose()
        kinds = ("executions", "events", "memory", "audit", "total")
        rows = [
            {"id": org, "name": names.get(org), **{k: bytes_.get(k, 0) for k in kinds}} for org, bytes_ in usage.items()
        ]
        return sorted(rows, key=lambda row: -int(row["total"]))

    rows = asyncio.run(main())
    if as_json:
        out.print(json.dumps(rows), markup=False)
        return
    table = Table("organization", *KINDS)
    for row in rows:
        table.add_row(
            str(row["name"] or row["id"]), *(str(row[k]) for k in ("executions", "events", "memory", "audit", "total"))
        )
    out.print(table)


def register() -> None:
    db_app.command("purge")(db_purge)
    db_app.command("usage")(db_usage)
