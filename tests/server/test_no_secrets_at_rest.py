"""No key secret ever reaches the database or the logs."""

from __future__ import annotations

import logging

import httpx
import pytest
from sqlalchemy import text

from auth.keys import format_key, random_base62
from server.state import AppState
from tests.helpers import KeyFactory


async def dump_database(state: AppState) -> str:
    """Every row of every table, as text."""
    from sqlmodel import SQLModel

    chunks: list[str] = []
    async with state.engine.connect() as connection:
        for table in SQLModel.metadata.sorted_tables:
            rows = (await connection.execute(text(f'SELECT * FROM "{table.name}"'))).all()
            chunks.extend(repr(tuple(row)) for row in rows)
    return "\n".join(chunks)


async def test_database_and_logs_hold_no_secret(
    client: httpx.AsyncClient, keys: KeyFactory, state: AppState, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    organization = await keys.organization()
    secrets = [await keys.key(organization) for _ in range(3)]
    await keys.revoke(secrets[2])
    for key in secrets:
        await client.get("/capabilities", headers={"x-api-key": key})
        await client.get("/capabilities", headers={"Authorization": f"Bearer {key}"})
        await client.get("/capabilities", headers={"x-api-key": format_key("live", key[8:20], random_base62(32))})
        await client.post("/mcp", headers={"x-api-key": key}, json={})
    dump = await dump_database(state)
    logs = caplog.text + "\n".join(str(record.__dict__) for record in caplog.records)
    assert "capgate.request" in {record.name for record in caplog.records}
    for key in secrets:
        secret_part = key[20:52]
        assert secret_part not in dump
        assert secret_part not in logs
        assert key not in logs
