"""Tool calls finishing together share one transaction; each is still recorded, and a bad write fails alone."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import httpx
import pytest
from asgi_lifespan import LifespanManager
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import SQLModel
from starlette.applications import Starlette

from auth.errors import Conflict
from server import runtime_store
from server.app import create_app
from server.group_commit import GroupCommit
from server.state import AppState
from tests.conftest import migrate
from tests.helpers import KeyFactory, make_settings


@pytest.fixture
async def app(tmp_path: Path, database_url: str) -> AsyncIterator[Starlette]:
    """On SQLite and PostgreSQL: the batched inserts must keep foreign-key order on both."""
    settings = make_settings(tmp_path, database_url)
    await migrate(settings.resolved_database_url)
    application = create_app(settings)
    async with LifespanManager(application):
        yield application


async def test_concurrent_calls_each_get_their_execution_and_events(
    client: httpx.AsyncClient, keys: KeyFactory
) -> None:
    key = await keys.key(await keys.organization())
    headers = {"x-api-key": key}

    async def call(index: int) -> dict[str, object]:
        response = await client.post(
            "/api/runtime/tools/example_echo", json={"input": {"text": f"call {index}"}}, headers=headers
        )
        assert response.status_code == 200, response.text
        return response.json()

    answers = await asyncio.gather(*(call(index) for index in range(25)))
    for index, answer in enumerate(answers):
        execution = (await client.get(f"/api/runtime/executions/{answer['executionId']}", headers=headers)).json()
        assert execution["status"] == "succeeded"
        assert execution["result"] == {"text": f"call {index}"}
        events = await client.get(f"/api/runtime/executions/{answer['executionId']}/events", headers=headers)
        assert "event: started" in events.text and "event: completed" in events.text


async def test_a_failing_write_fails_only_its_own_call(state: AppState, keys: KeyFactory) -> None:
    organization = await keys.organization()
    writer = GroupCommit(state.sessions)
    release = anyio.Event()
    ids = [runtime_store.new_id("ses") for _ in range(3)]

    def adding(session_id: str) -> object:
        async def write(_session: AsyncSession) -> list[SQLModel]:
            return [
                runtime_store.new_session(
                    organization_id=organization.id, title=None, source="api", key_id=None, session_id=session_id
                )
            ]

        return write

    async def blocking(session: AsyncSession) -> list[SQLModel]:
        await release.wait()  # holds the writer so the next writes queue into one batch
        return await adding(ids[0])(session)  # type: ignore[operator,no-any-return]

    async def failing(_session: AsyncSession) -> list[SQLModel]:
        raise Conflict("Session is archived")

    outcomes: dict[str, BaseException | None] = {}

    async def run(name: str, write: object) -> None:
        try:
            await writer.write(write)  # type: ignore[arg-type]
            outcomes[name] = None
        except Conflict as error:
            outcomes[name] = error

    async with anyio.create_task_group() as tasks:
        tasks.start_soon(run, "first", blocking)
        await anyio.wait_all_tasks_blocked()
        tasks.start_soon(run, "second", adding(ids[1]))
        tasks.start_soon(run, "bad", failing)
        tasks.start_soon(run, "third", adding(ids[2]))
        await anyio.wait_all_tasks_blocked()
        release.set()

    assert outcomes["first"] is None and outcomes["second"] is None and outcomes["third"] is None
    assert isinstance(outcomes["bad"], Conflict)
    async with state.sessions() as session:
        for session_id in ids:
            row = await runtime_store.get_session(session, organization_id=organization.id, session_id=session_id)
            assert row.id == session_id
