"""kill -9 during a running execution: after a restart it reads `interrupted`, and no memory
document is half-written."""

import contextlib
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from sqlalchemy import text

from tests.e2e.runtime_server import Keys, ServerProcess
from tests.e2e.test_runtime_streams import running_execution
from tests.runtime_helpers import parse_sse

pytestmark = pytest.mark.e2e
WRITERS = 12
DOCUMENT_BYTES = 200_000


def document(index: int) -> str:
    return f"<doc {index}>" + chr(ord("a") + index % 26) * DOCUMENT_BYTES + f"</doc {index}>"


async def written_at_least(keys: Keys, count: int) -> None:
    with anyio.fail_after(20):
        while True:
            async with keys.sessions() as session:
                if (await session.scalar(text("SELECT count(*) FROM memory_documents"))) >= count:
                    return
            await anyio.sleep(0.005)


async def test_kill_9_leaves_interrupted_executions_and_whole_documents(tmp_path: Path) -> None:
    settings: dict[str, Any] = {"worker_heartbeat_seconds": 0.2, "event_flush_seconds": 0.05}
    first = ServerProcess(tmp_path, **settings)
    await anyio.to_thread.run_sync(first.start)
    keys = Keys(first.database_url)
    key = await keys.key()
    try:
        async with httpx.AsyncClient(base_url=first.base_url, timeout=30) as http:
            session_id = (await http.post("/api/runtime/sessions", headers={"x-api-key": key})).json()["id"]

            async def countdown() -> None:
                with contextlib.suppress(httpx.TransportError):
                    await http.post(
                        f"/api/runtime/sessions/{session_id}/tools/example_countdown",
                        json={"input": {"steps": 1000, "interval_ms": 50}},
                        headers={"x-api-key": key},
                    )

            async def write(index: int) -> None:
                with contextlib.suppress(httpx.TransportError):
                    await http.post(
                        "/api/runtime/tools/memory_write",
                        json={"input": {"path": f"/crash/{index}.md", "content": document(index)}},
                        headers={"x-api-key": key},
                    )

            async with anyio.create_task_group() as tasks:
                tasks.start_soon(countdown)
                execution_id = await running_execution(keys, session_id)
                for index in range(WRITERS):
                    tasks.start_soon(write, index)
                await written_at_least(keys, 2)  # kill while the other writers are still going
                first.kill()
    finally:
        first.kill()

    second = ServerProcess(tmp_path, **settings)
    await anyio.to_thread.run_sync(second.start)
    try:
        async with httpx.AsyncClient(base_url=second.base_url, timeout=30) as http:
            url = f"/api/runtime/executions/{execution_id}"
            with anyio.fail_after(20):
                while (execution := (await http.get(url, headers={"x-api-key": key})).json())["status"] == "running":
                    await anyio.sleep(0.05)
            assert execution["status"] == "interrupted" and execution["isError"] is True
            assert "interrupted" in execution["error"]
            assert "may have done some or all of its work" in execution["error"]  # a retry cannot know
            events = parse_sse((await http.get(f"{url}/events", headers={"x-api-key": key})).text)
            assert events[0]["event"] == "started" and events[-1]["event"] == "interrupted"

            whole = 0
            for index in range(WRITERS):
                response = await http.post(
                    "/api/runtime/tools/memory_read",
                    json={"input": {"path": f"/crash/{index}.md"}},
                    headers={"x-api-key": key},
                )
                body = response.json()
                if body["isError"]:
                    assert body["error"] == f"No such document: /crash/{index}.md"
                else:
                    assert body["result"]["content"] == document(index)
                    whole += 1
            assert whole >= 2
    finally:
        await keys.close()
        await anyio.to_thread.run_sync(second.stop)
