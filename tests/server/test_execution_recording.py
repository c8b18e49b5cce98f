"""An execution's record survives failed writes and interruption verdicts: the caller gets its result."""

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from sqlalchemy import delete, event
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine

from auth.dbtypes import utcnow
from server.runtime import store as runtime_store
from server.runtime import worker
from server.runtime.models import RuntimeWorker
from server.state import AppState
from tests.deadlines import EVENTUALLY
from tests.runtime_helpers import HeldTool, app_client, headers, invoke, parse_sse


def engine_of(state: AppState) -> AsyncEngine:
    engine: AsyncEngine = state.sessions.kw["bind"]
    return engine


@contextmanager
def first_execution_commit_fails(engine: AsyncEngine, failed: anyio.Event) -> Iterator[None]:
    """The first commit of a transaction that wrote an `executions` row fails, as a busy database would."""

    def note_write(conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if statement.lstrip().upper().startswith("INSERT INTO EXECUTIONS"):
            conn.info["wrote_execution"] = True

    def fail_commit(conn: Any) -> None:
        if conn.info.pop("wrote_execution", False) and not failed.is_set():
            failed.set()
            raise OperationalError("COMMIT", {}, Exception("database is locked"))

    event.listen(engine.sync_engine, "before_cursor_execute", note_write)
    event.listen(engine.sync_engine, "commit", fail_commit)
    try:
        yield
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", note_write)
        event.remove(engine.sync_engine, "commit", fail_commit)


async def test_a_failed_periodic_flush_neither_loses_the_execution_nor_stops_the_tool(
    tmp_path: Path, database_url: str
) -> None:
    held = HeldTool()
    async with app_client(tmp_path, database_url, [held.tool()], event_flush_seconds=0.01) as (client, keys, state):
        key = await keys.key(await keys.organization())
        flush_failed = anyio.Event()
        responses: list[httpx.Response] = []

        async def call() -> None:
            responses.append(await invoke(client, key, "hold"))

        with first_execution_commit_fails(engine_of(state), flush_failed), anyio.fail_after(EVENTUALLY):
            async with anyio.create_task_group() as tasks:
                tasks.start_soon(call)
                await held.started.wait()
                await flush_failed.wait()
                held.release.set()
        body = responses[0].json()
        assert responses[0].status_code == 200 and body["status"] == "succeeded" and body["result"] == "released"
        execution = (await client.get(f"/api/runtime/executions/{body['executionId']}", headers=headers(key))).json()
        assert execution["status"] == "succeeded"
        events = await client.get(f"/api/runtime/executions/{body['executionId']}/events", headers=headers(key))
        assert [item["event"] for item in parse_sse(events.text)] == ["started", "progress", "completed"]


async def wait_until_recorded_running(client: httpx.AsyncClient, key: str, execution_id: str) -> None:
    with anyio.fail_after(EVENTUALLY):
        while True:
            response = await client.get(f"/api/runtime/executions/{execution_id}", headers=headers(key))
            if response.status_code == 200 and response.json()["status"] == "running":
                return
            await anyio.sleep(0.01)


async def test_an_execution_wrongly_marked_interrupted_still_finishes(tmp_path: Path, database_url: str) -> None:
    held = HeldTool()
    async with app_client(tmp_path, database_url, [held.tool()], event_flush_seconds=0.01) as (client, keys, state):
        key = await keys.key(await keys.organization())
        responses: list[httpx.Response] = []

        async def call() -> None:
            responses.append(await invoke(client, key, "hold"))

        with anyio.fail_after(EVENTUALLY):
            async with anyio.create_task_group() as tasks:
                tasks.start_soon(call)
                await held.started.wait()
                execution_id = held.execution_ids[0]
                await wait_until_recorded_running(client, key, execution_id)
                async with state.sessions.begin() as session:  # another replica's verdict: this process looks dead
                    await session.execute(delete(RuntimeWorker))
                    interrupted = await runtime_store.interrupt_orphaned_executions(
                        session, stale_after=timedelta(seconds=15), own_worker_id="wrk_other_replica"
                    )
                assert interrupted == 1
                held.release.set()
        body = responses[0].json()
        assert responses[0].status_code == 200 and body["status"] == "succeeded" and body["result"] == "released"
        execution = (await client.get(f"/api/runtime/executions/{execution_id}", headers=headers(key))).json()
        assert execution["status"] == "succeeded" and execution["result"] == "released"
        url = f"/api/runtime/executions/{execution_id}/events"
        events = parse_sse((await client.get(url, headers=headers(key))).text)  # ends at the verdict's terminal event
        assert [(item["id"], item["event"]) for item in events] == [
            ("1", "started"),
            ("2", "progress"),
            ("3", "interrupted"),
        ]
        resumed = parse_sse((await client.get(url, headers=headers(key, **{"Last-Event-ID": "3"}))).text)
        assert [(item["id"], item["event"]) for item in resumed] == [("4", "completed")]


async def test_a_replica_with_a_fast_clock_does_not_interrupt_a_live_worker(
    tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    held = HeldTool()
    async with app_client(tmp_path, database_url, [held.tool()], event_flush_seconds=0.01) as (client, keys, state):
        key = await keys.key(await keys.organization())
        with anyio.fail_after(EVENTUALLY):
            async with anyio.create_task_group() as tasks:
                tasks.start_soon(invoke, client, key, "hold")
                await held.started.wait()
                await wait_until_recorded_running(client, key, held.execution_ids[0])
                await worker.beat_once(state.sessions, worker_id=state.runtime.worker_id, interval=5)
                skewed = utcnow() + timedelta(seconds=20)  # another replica's clock, 20 s ahead of everyone
                for module in (worker, runtime_store):  # this process's clock, wherever it is read
                    monkeypatch.setattr(module, "utcnow", lambda: skewed, raising=False)
                interrupted = await worker.beat_once(state.sessions, worker_id="wrk_other_replica", interval=5)
                held.release.set()
        assert interrupted == 0


async def test_runtime_rows_are_stamped_with_the_database_clock(tmp_path: Path, database_url: str) -> None:
    held = HeldTool(result="done")
    held.release.set()
    async with app_client(tmp_path, database_url, [held.tool()]) as (client, keys, state):
        key = await keys.key(await keys.organization())
        state.runtime.clock.offset = timedelta(hours=1)  # as if this host's clock ran an hour behind the database's
        body = (await invoke(client, key, "hold")).json()
        execution = (await client.get(f"/api/runtime/executions/{body['executionId']}", headers=headers(key))).json()
        session = (await client.post("/api/runtime/sessions", json={}, headers=headers(key))).json()
        later = (utcnow() + timedelta(minutes=59)).isoformat()
        assert execution["startedAt"] > later and session["createdAt"] > later
        await worker.beat_once(state.sessions, worker_id="wrk_probe", interval=5, clock=state.runtime.clock)
        assert abs(state.runtime.clock.offset) < timedelta(seconds=5)  # measured again at the heartbeat
