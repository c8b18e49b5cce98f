"""Replicas started at the same instant on an empty database: every one comes up, the schema is migrated once."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from sqlalchemy import text

from server.db import create_engine
from server.migrate import MIGRATIONS_DIR
from tests.e2e.harness import CapgateProcess, capgate_env, free_port

pytestmark = pytest.mark.e2e
REPLICAS = 3


def head_revision() -> str:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    (head,) = ScriptDirectory.from_config(config).get_heads()
    return head


async def applied_revisions(url: str) -> list[str]:
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            return list((await connection.execute(text("SELECT version_num FROM alembic_version"))).scalars())
    finally:
        await engine.dispose()


def start_together(tmp_path: Path, database_url: str) -> list[CapgateProcess]:
    replicas = []
    for index in range(REPLICAS):
        data_dir = tmp_path / f"replica-{index}"
        data_dir.mkdir()
        replica = CapgateProcess(
            data_dir=data_dir,
            env=capgate_env(tmp_path / "shared", database_url),
            port=free_port(),
            log_path=data_dir / "server.log",
        )
        replicas.append(replica)
    for replica in replicas:  # no `capgate init` first: each replica migrates on its own start
        replica.launch()
    return replicas


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_replicas_started_at_once_on_an_empty_database_all_come_up(
    tmp_path: Path, backend: str, request: pytest.FixtureRequest
) -> None:
    if backend == "postgres":
        url = request.getfixturevalue("empty_postgres_url")
    else:
        url = f"sqlite+aiosqlite:///{tmp_path / 'shared' / 'capgate.db'}"
    replicas = start_together(tmp_path, url)
    try:
        for replica in replicas:
            replica.wait_healthy()
        for replica in replicas:
            log = replica.log_text()
            assert "Traceback" not in log and "UniqueViolation" not in log, log
    finally:
        for replica in replicas:
            replica.stop()
    assert asyncio.run(applied_revisions(url)) == [head_revision()]
