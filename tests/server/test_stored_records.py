"""Issue 14 item 6: stored inputs and results are bounded, old records are purged, and what each
organization stores is counted — on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
from asgi_lifespan import LifespanManager
from sqlalchemy import func, select, update

from auth.dbtypes import utcnow
from auth.models import AuditEvent
from server.app import create_app
from server.runtime.models import Execution, ExecutionEvent, IdempotencyRecord
from server.runtime.retention import RetentionPolicy, purge, stored_bytes
from tests.conftest import migrate
from tests.helpers import factory_for, make_settings

POLICY = RetentionPolicy(executions=timedelta(days=30), idempotency=timedelta(days=1), audit=timedelta(days=365))


async def test_huge_ignored_field_is_stored_truncated(tmp_path: Path, database_url: str) -> None:
    """Attack: a 900 KB ignored field in an example_echo call was stored whole (about 5 GB a day per key)."""
    await migrate(database_url)
    application = create_app(make_settings(tmp_path, database_url, record_max_bytes=4096))
    async with LifespanManager(application):
        keys = factory_for(application)
        organization = await keys.organization()
        key = await keys.key(organization)
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://capgate.test") as http:
            junk = "a" * 900_000
            response = await http.post(
                "/api/runtime/tools/example_echo",
                json={"input": {"text": "hi", "junk": junk}},
                headers={"x-api-key": key},
            )
            assert response.status_code == 200 and response.json()["result"] is not None
            long_result = await http.post(
                "/api/runtime/tools/example_echo", json={"input": {"text": "b" * 10_000}}, headers={"x-api-key": key}
            )
            assert long_result.json()["result"] == {"text": "b" * 10_000}  # the caller gets it whole
        state = application.state.capgate
        async with state.sessions() as session:
            mine = Execution.organization_id == organization.id  # the PostgreSQL database is shared by the run
            rows = (await session.execute(select(Execution).where(mine).order_by(Execution.started_at))).scalars().all()
            in_mine = ExecutionEvent.organization_id == organization.id
            events = (await session.execute(select(ExecutionEvent.data).where(in_mine))).scalars().all()
        first, second = rows
        assert first.input is not None and set(first.input) == {"$truncated"}
        assert first.input["$truncated"]["originalBytes"] > 900_000
        assert len(first.input["$truncated"]["preview"].encode()) <= 4096
        assert set(second.output) == {"$truncated"}
        assert all(len(str(data)) < 5_000 for data in events)


async def old_records(application: Any, key: str, organization_id: str) -> None:
    """Two executions (one with an Idempotency-Key) and audit rows, then everything dated 400 days back."""
    transport = httpx.ASGITransport(app=application)
    async with httpx.AsyncClient(transport=transport, base_url="http://capgate.test") as http:
        for headers in ({"x-api-key": key}, {"x-api-key": key, "Idempotency-Key": "old-1"}):
            response = await http.post(
                "/api/runtime/tools/example_echo", json={"input": {"text": "x"}}, headers=headers
            )
            assert response.status_code == 200
        await http.get("/capabilities", headers={"x-api-key": "cg_live_not-a-key"})
    state = application.state.capgate
    long_ago = utcnow() - timedelta(days=400)
    async with state.sessions.begin() as session:
        mine = Execution.organization_id == organization_id
        await session.execute(update(Execution).where(mine).values(started_at=long_ago, finished_at=long_ago))
        await session.execute(
            update(IdempotencyRecord)
            .where(IdempotencyRecord.organization_id == organization_id)
            .values(created_at=long_ago)
        )
        session.add(
            AuditEvent(organization_id=organization_id, actor="test", action="key.created", created_at=long_ago)
        )


async def counts(application: Any, organization_id: str) -> tuple[int, int, int, int]:
    """This organization's rows (the PostgreSQL database is shared by the test run)."""

    async def count(table: Any) -> int:
        query = select(func.count()).select_from(table).where(table.organization_id == organization_id)
        return int(await session.scalar(query) or 0)

    async with application.state.capgate.sessions() as session:
        return (
            await count(Execution),
            await count(ExecutionEvent),
            await count(IdempotencyRecord),
            await count(AuditEvent),
        )


async def test_nothing_was_ever_deleted_now_retention_purges(tmp_path: Path, database_url: str) -> None:
    """Attack: executions, events, idempotency and audit rows were kept forever (disk full, then 500s)."""
    await migrate(database_url)
    application = create_app(make_settings(tmp_path, database_url))
    async with LifespanManager(application):
        keys = factory_for(application)
        organization = await keys.organization()
        key = await keys.key(organization)
        await old_records(application, key, organization.id)
        before = await counts(application, organization.id)
        assert before[0] == 2 and before[1] >= 4 and before[2] == 1 and before[3] >= 1
        new_key = await keys.key(organization)  # a fresh audit row (key.created) that must stay
        purged = await purge(application.state.capgate.sessions, POLICY, utcnow())
        assert purged.executions >= 2 and purged.events >= before[1] and purged.idempotency_records >= 1
        assert purged.audit_events >= 1
        after = await counts(application, organization.id)
        assert after[:3] == (0, 0, 0) and after[3] >= 1
        assert new_key


async def test_stored_bytes_are_counted_per_organization(tmp_path: Path, database_url: str) -> None:
    await migrate(database_url)
    application = create_app(make_settings(tmp_path, database_url))
    async with LifespanManager(application):
        keys = factory_for(application)
        big, small = await keys.organization(), await keys.organization()
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://capgate.test") as http:
            for organization, size in ((big, 5_000), (small, 10)):
                key = await keys.key(organization)
                await http.post(
                    "/api/runtime/tools/memory_write",
                    json={"input": {"path": "/a.md", "content": "m" * size}},
                    headers={"x-api-key": key},
                )
        async with application.state.capgate.sessions() as session:
            usage = await stored_bytes(session)
        assert usage[big.id]["memory"] == 5_000 and usage[small.id]["memory"] == 10
        assert usage[big.id]["executions"] > usage[small.id]["executions"] > 0
        assert usage[big.id]["total"] == sum(v for k, v in usage[big.id].items() if k != "total")
