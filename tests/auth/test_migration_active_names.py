"""Migration 0005_unique_active_key_names on data written before it, on SQLite and a fresh PostgreSQL database."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError

from auth.dbtypes import utcnow
from auth.models import ApiKey, AuditEvent, Organization
from server.db import create_engine
from server.migrate import upgrade_database
from tests.conftest import POSTGRES_ADMIN_DSN

KEYS = ApiKey.__table__


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def empty_database(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """A database no migration has touched yet (the run's shared PostgreSQL one is already at head)."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'capgate.db'}"
        return
    name = f"capgate_migration_{secrets.token_hex(6)}"
    admin = await asyncpg.connect(POSTGRES_ADMIN_DSN)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        yield f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}"
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


def key_row(key_id: str, name: str, age_minutes: int) -> dict[str, object]:
    at = utcnow() - timedelta(minutes=age_minutes)
    return {
        "id": key_id,
        "organization_id": "org_1",
        "name": name,
        "scopes": ["runtime"],
        "created_at": at,
        "updated_at": at,
        "display_prefix": "cg_live_" + key_id[:4],
        "key_hash": "x",
    }


async def test_existing_rotation_pairs_and_race_duplicates_survive_the_unique_index(empty_database: str) -> None:
    engine = create_engine(empty_database)
    try:
        await upgrade_database(engine, "0004")
        async with engine.begin() as connection:
            await connection.execute(insert(Organization.__table__).values(id="org_1", name="acme", mode="live"))
            for key_id, name, age in (
                ("oldAgent0001", "agent", 30),
                ("newAgent0001", "agent", 20),
                ("dupOlder0001", "dup", 10),
                ("dupNewer0001", "dup", 5),
            ):
                await connection.execute(insert(KEYS).values(**key_row(key_id, name, age)))
            await connection.execute(
                insert(AuditEvent.__table__).values(
                    organization_id="org_1",
                    created_at=utcnow(),
                    actor="cli",
                    action="key.rotated",
                    key_id="oldAgent0001",
                    details={"replacedBy": "newAgent0001"},
                )
            )
        await upgrade_database(engine)
        async with engine.connect() as connection:
            rows = {row.id: row for row in await connection.execute(select(KEYS))}
        assert rows["oldAgent0001"].replaced_by == "newAgent0001"
        assert (rows["oldAgent0001"].name, rows["newAgent0001"].name) == ("agent", "agent")
        assert (rows["dupNewer0001"].name, rows["dupOlder0001"].name) == ("dup", "dup (dupOlder0001)")
        with pytest.raises(IntegrityError):
            async with engine.begin() as connection:
                await connection.execute(insert(KEYS).values(**key_row("dupThird0001", "dup", 0)))
    finally:
        await engine.dispose()
