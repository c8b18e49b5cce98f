"""Races around Idempotency-Key claims, driven step by step on SQLite and PostgreSQL.

A gate holds a claim just before it writes to ``idempotency_keys`` (after whatever it read),
so two claims can be lined up exactly as two concurrent retries would run.
"""

import functools
from collections.abc import AsyncIterator
from contextvars import ContextVar
from datetime import timedelta
from pathlib import Path
from typing import Any

import anyio
import pytest
from sqlalchemy import event, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from sqlalchemy.util import await_only

from auth import store
from auth.dbtypes import utcnow
from server.db import create_engine, session_factory
from server.runtime import store as runtime_store
from server.runtime.models import IdempotencyRecord
from tests.conftest import migrate
from tests.deadlines import EVENTUALLY
from tests.runtime_helpers import HeldTool, app_client, headers, invoke

TTL = timedelta(hours=24)


class Gate:
    def __init__(self) -> None:
        self.reached, self.opened = anyio.Event(), anyio.Event()

    async def pass_through(self) -> None:
        self.reached.set()
        await self.opened.wait()


_gate: ContextVar[Gate | None] = ContextVar("idempotency_gate", default=None)


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    await migrate(database_url)
    engine = create_engine(database_url)

    def hold_updates(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        gate = _gate.get()
        if gate is not None and statement.lstrip().upper().startswith("UPDATE IDEMPOTENCY_KEYS"):
            _gate.set(None)
            await_only(gate.pass_through())

    event.listen(engine.sync_engine, "before_cursor_execute", hold_updates)
    yield engine
    await engine.dispose()


async def claim(session: AsyncSession, organization_id: str, execution_id: str) -> str | None:
    return await runtime_store.claim_idempotency_key(
        session, organization_id=organization_id, key="retry", request_hash="h" * 64, execution_id=execution_id, ttl=TTL
    )


async def test_two_concurrent_retries_of_an_expired_key_run_once(engine: AsyncEngine) -> None:
    sessions = session_factory(engine)
    async with sessions.begin() as session:
        organization_id = (await store.create_organization(session, name="org-race")).id
        assert await claim(session, organization_id, "exe_first") is None
        await session.execute(update(IdempotencyRecord).values(created_at=utcnow() - TTL - timedelta(seconds=1)))
    outcomes: dict[str, str | None] = {}
    gates = {"exe_a": Gate(), "exe_b": Gate()}

    async def retry(execution_id: str) -> None:
        _gate.set(gates[execution_id])
        async with sessions.begin() as session:
            outcomes[execution_id] = await claim(session, execution_id=execution_id, organization_id=organization_id)

    with anyio.fail_after(EVENTUALLY):
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(retry, "exe_a")
            await gates["exe_a"].reached.wait()  # A has read the expired record and is about to take it over
            tasks.start_soon(retry, "exe_b")
            if engine.dialect.name == "postgresql":  # SQLite lets one writer in at a time: B waits for A's commit
                await gates["exe_b"].reached.wait()  # B has read the same expired record
            gates["exe_a"].opened.set()
            gates["exe_b"].opened.set()
    owners = [execution for execution, earlier in outcomes.items() if earlier is None]
    assert len(owners) == 1, outcomes
    other = "exe_b" if owners == ["exe_a"] else "exe_a"
    assert outcomes[other] == owners[0]


async def test_a_retry_after_an_interrupted_first_call_says_so_and_does_not_run(
    tmp_path: Path, database_url: str
) -> None:
    held = HeldTool()
    async with app_client(tmp_path, database_url, [held.tool()]) as (client, keys, _state):
        key = await keys.key(await keys.organization())
        retry_headers = {"Idempotency-Key": "once"}
        with anyio.fail_after(EVENTUALLY):
            async with anyio.create_task_group() as tasks:  # the client gives up: its call is cancelled
                tasks.start_soon(functools.partial(invoke, client, key, "hold", headers=retry_headers))
                await held.started.wait()
                tasks.cancel_scope.cancel()
        first = held.execution_ids[0]
        execution = await client.get(f"/api/runtime/executions/{first}", headers=headers(key))
        assert execution.json()["status"] == "interrupted"
        retry = await invoke(client, key, "hold", headers=retry_headers)
        assert retry.status_code == 409, retry.text
        assert retry.json()["code"] == "idempotency_key_interrupted"
        assert retry.json()["details"] == {"executionId": first}
        assert "may have" in retry.json()["error"]
        assert held.execution_ids == [first]
