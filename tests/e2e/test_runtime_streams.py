"""Execution event streams over real HTTP: live delivery, resumption, heartbeats, revocation."""

from collections.abc import AsyncIterator, Iterator
from typing import Any

import anyio
import httpx
import pytest
from sqlalchemy import text

from tests.e2e.runtime_server import Keys, ServerProcess
from tests.runtime_helpers import parse_sse

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def server_process(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    process = ServerProcess(tmp_path_factory.mktemp("streams"), sse_heartbeat_seconds=0.2, event_flush_seconds=0.05)
    process.start()
    try:
        yield process
    finally:
        process.stop()


@pytest.fixture
async def server(server_process: ServerProcess) -> AsyncIterator[tuple[ServerProcess, Keys]]:
    keys = Keys(server_process.database_url)
    try:
        yield server_process, keys
    finally:
        await keys.close()


async def running_execution(keys: Keys, session_id: str, timeout: float = 10.0) -> str:
    """The id of the execution running in the session, once it is recorded (the API returns ids at the end)."""
    with anyio.fail_after(timeout):
        while True:
            async with keys.sessions() as session:
                found = await session.scalar(
                    text("SELECT id FROM executions WHERE session_id = :s AND status = 'running'"), {"s": session_id}
                )
            if found:
                return str(found)
            await anyio.sleep(0.02)


async def start_countdown(http: httpx.AsyncClient, key: str, steps: int, interval_ms: int) -> tuple[str, Any]:
    session_id = (await http.post("/api/runtime/sessions", headers={"x-api-key": key})).json()["id"]

    async def call() -> dict[str, Any]:
        response = await http.post(
            f"/api/runtime/sessions/{session_id}/tools/example_countdown",
            json={"input": {"steps": steps, "interval_ms": interval_ms}},
            headers={"x-api-key": key},
            timeout=60,
        )
        return dict(response.json())

    return session_id, call


async def read_events(response: httpx.Response, into: list[str]) -> None:
    async for line in response.aiter_lines():
        into.append(line)


async def test_mid_execution_client_gets_earlier_then_live_events_then_the_end(
    server: tuple[ServerProcess, Keys],
) -> None:
    process, keys = server
    key = await keys.key()
    result: dict[str, Any] = {}
    async with httpx.AsyncClient(base_url=process.base_url, timeout=30) as http:
        session_id, call = await start_countdown(http, key, steps=8, interval_ms=150)
        async with anyio.create_task_group() as tasks:

            async def run() -> None:
                result.update(await call())

            tasks.start_soon(run)
            execution_id = await running_execution(keys, session_id)
            url = f"/api/runtime/executions/{execution_id}/events"
            lines: list[str] = []
            async with http.stream("GET", url, headers={"x-api-key": key}) as response:
                assert response.headers["content-type"].startswith("text/event-stream")
                assert not result, "the stream must open while the execution still runs"
                await read_events(response, lines)
        events = parse_sse("\n".join(lines))
        assert [e["event"] for e in events] == ["started"] + ["progress"] * 8 + ["completed"]
        assert [int(e["id"]) for e in events] == list(range(1, 11))
        assert [e["data"]["data"]["progress"] for e in events[1:-1]] == list(range(1, 9))
        assert result["executionId"] == execution_id and result["result"] == {"steps": 8, "done": True}
        assert any(line.startswith(":") for line in lines), "idle gaps carry heartbeat comments"

        resumed = await http.get(url, headers={"x-api-key": key, "Last-Event-ID": "6"})
        assert [int(e["id"]) for e in parse_sse(resumed.text)] == [7, 8, 9, 10]


async def test_reconnect_mid_execution_resumes_exactly(server: tuple[ServerProcess, Keys]) -> None:
    process, keys = server
    key = await keys.key()
    async with httpx.AsyncClient(base_url=process.base_url, timeout=30) as http:
        session_id, call = await start_countdown(http, key, steps=10, interval_ms=100)
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(call)
            execution_id = await running_execution(keys, session_id)
            url = f"/api/runtime/executions/{execution_id}/events"
            first: list[str] = []
            async with http.stream("GET", url, headers={"x-api-key": key}) as response:
                async for line in response.aiter_lines():
                    first.append(line)
                    if line == "id: 3":
                        break
            second: list[str] = []
            async with http.stream("GET", url, headers={"x-api-key": key, "Last-Event-ID": "3"}) as response:
                await read_events(response, second)
        ids = [int(e["id"]) for e in parse_sse("\n".join(second))]
        assert ids == list(range(4, 13))


async def test_open_stream_outlives_the_revocation_of_its_key(server: tuple[ServerProcess, Keys]) -> None:
    process, keys = server
    key = await keys.key()
    async with httpx.AsyncClient(base_url=process.base_url, timeout=30) as http:
        session_id, call = await start_countdown(http, key, steps=10, interval_ms=150)
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(call)
            execution_id = await running_execution(keys, session_id)
            lines: list[str] = []
            url = f"/api/runtime/executions/{execution_id}/events"
            async with http.stream("GET", url, headers={"x-api-key": key}) as response:
                await keys.revoke(key)
                with anyio.fail_after(10):
                    while (await http.get("/capabilities", headers={"x-api-key": key})).status_code != 401:
                        await anyio.sleep(0.05)
                await read_events(response, lines)
        events = parse_sse("\n".join(lines))
        assert events[-1]["event"] == "completed"
        assert [int(e["id"]) for e in events] == list(range(1, 13))
