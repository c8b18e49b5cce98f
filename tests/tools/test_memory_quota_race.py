"""Attack: overshooting the organization's memory quota with concurrent writers.

Each writer checked the quota inside its own transaction without seeing the others' uncommitted
documents, so 40 writers stored 1.8 MB against a 1 MB quota on PostgreSQL. The gate below holds
every writer between its quota check and its commit until all have checked or the rest wait on a
lock, which reproduces the interleaving deterministically on PostgreSQL.
"""

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio
import asyncpg
import httpx
import pytest
from sqlalchemy import func, select

from tests.tools.conftest import memory_app
from tests.tools.test_memory_tools import call
from tools.memory import store
from tools.memory.models import MemoryDocument

WRITERS, SIZE, QUOTA = 6, 100, 250


async def lock_waiters(dsn: str) -> int:
    connection = await asyncpg.connect(dsn)
    try:
        query = "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
        return int(await connection.fetchval(query))
    finally:
        await connection.close()


def gate_after_quota_check(monkeypatch: pytest.MonkeyPatch, database_url: str) -> None:
    """Each writer waits after its quota check, before its commit, until every writer has checked
    or the rest are waiting on a lock: so no check can see another writer's commit."""
    if not database_url.startswith("postgresql"):
        return  # SQLite runs one writer at a time; the writers below race without a gate
    dsn = database_url.replace("postgresql+asyncpg://", "postgresql://")
    real: Callable[..., Awaitable[None]] = store._check_quota
    checked = 0

    async def gated(*args: Any, **kwargs: Any) -> None:
        nonlocal checked
        try:
            await real(*args, **kwargs)
        finally:
            checked += 1
            with anyio.fail_after(20):
                while checked < WRITERS and checked + await lock_waiters(dsn) < WRITERS:
                    await anyio.sleep(0.01)

    monkeypatch.setattr(store, "_check_quota", gated)


async def test_concurrent_writers_cannot_overshoot_the_memory_quota(
    tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    gate_after_quota_check(monkeypatch, database_url)
    async with memory_app(tmp_path, database_url, memory_max_document_bytes=SIZE, memory_quota_bytes=QUOTA) as pair:
        client, keys = pair
        organization = await keys.organization()
        key = await keys.key(organization)
        answers: list[httpx.Response] = []

        async def write(n: int) -> None:
            answers.append(await call(client, key, "memory_write", path=f"/race/{n}.md", content="x" * SIZE))

        with anyio.fail_after(60):
            async with anyio.create_task_group() as writers:
                for n in range(WRITERS):
                    writers.start_soon(write, n)
        accepted = [answer for answer in answers if not answer.json()["isError"]]
        refused = [answer.json()["error"] for answer in answers if answer.json()["isError"]]
        async with keys.sessions() as session:
            stored = await session.scalar(
                select(func.sum(MemoryDocument.size)).where(MemoryDocument.organization_id == organization.id)  # type: ignore[arg-type]
            )
    assert stored is not None and stored <= QUOTA, f"{stored} bytes stored against a quota of {QUOTA}"
    assert len(accepted) == QUOTA // SIZE
    assert all("quota" in message for message in refused) and len(refused) == WRITERS - QUOTA // SIZE
