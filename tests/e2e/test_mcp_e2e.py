"""The MCP endpoint of a real capgate process, through the official client in both protocol modes."""

from __future__ import annotations

import json
from typing import Any

import anyio
import anyio.to_thread
import mcp_types as types
import pytest
from mcp.shared.exceptions import MCPError

from tests.deadlines import EVENTUALLY
from tests.e2e.harness import CapgateProcess
from tests.mcp_helpers import Mode, leaf_errors, mcp_client

pytestmark = pytest.mark.e2e
MODES: list[Mode] = ["legacy", "auto"]


class Recorder:
    """Collects what the server pushes: progress of a call, and notifications on the session."""

    def __init__(self) -> None:
        self.progress: list[float] = []
        self.list_changed = 0
        self.first_progress = anyio.Event()

    async def on_progress(self, progress: float, _total: float | None, _message: str | None) -> None:
        self.progress.append(progress)
        self.first_progress.set()

    async def on_message(self, message: Any) -> None:
        if isinstance(message, types.ServerNotification | types.ToolListChangedNotification):
            notification = getattr(message, "root", message)
            if isinstance(notification, types.ToolListChangedNotification):
                self.list_changed += 1


async def wait_for(predicate: Any, timeout: float) -> None:
    with anyio.fail_after(timeout):
        while not predicate():
            await anyio.sleep(0.02)


async def run_cli(capgate: CapgateProcess, *args: str) -> None:
    await anyio.to_thread.run_sync(lambda: capgate.cli(*args))


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("style", ["bearer", "x-api-key"])
async def test_tools_memory_round_trip_and_progress(capgate: CapgateProcess, mode: Mode, style: str) -> None:
    key = capgate.create_key("demo")["key"]
    recorder = Recorder()
    async with mcp_client(f"{capgate.url}/mcp", key, mode=mode, style=style) as client:
        names = {tool.name for tool in (await client.list_tools()).tools}
        assert {"memory_write", "memory_read", "memory_search", "example_countdown"} <= names
        written = await client.call_tool("memory_write", {"path": f"/topics/{mode}-{style}.md", "content": "hello mcp"})
        assert not written.is_error, written.content
        read = await client.call_tool("memory_read", {"path": f"/topics/{mode}-{style}.md"})
        assert not read.is_error and "hello mcp" in json.dumps(read.structured_content)
        result = await client.call_tool(
            "example_countdown", {"steps": 3, "interval_ms": 20}, progress_callback=recorder.on_progress
        )
    assert not result.is_error
    assert recorder.progress == [1, 2, 3]
    assert set(result.meta or {}) >= {"executionId", "sessionId", "eventsUrl"}


async def test_revocation_lets_open_streams_finish_and_refuses_new_requests(capgate: CapgateProcess) -> None:
    created = capgate.create_key("demo")
    recorder = Recorder()
    url = f"{capgate.url}/mcp"
    async with mcp_client(url, created["key"], mode="legacy", message_handler=recorder.on_message) as client:
        assert len((await client.list_tools()).tools) > 2
        # A scope change reaches the open session as list_changed (which also proves its GET stream is open).
        await run_cli(capgate, "keys", "update", created["id"], "--allowed-tool", "example_*")
        await wait_for(lambda: recorder.list_changed >= 1, timeout=EVENTUALLY)
        assert {tool.name for tool in (await client.list_tools()).tools} == {
            "example_echo",
            "example_countdown",
            "example_fail",
        }

        result: dict[str, Any] = {}

        async def long_call() -> None:
            arguments = {"steps": 15, "interval_ms": 150}
            result["value"] = await client.call_tool(
                "example_countdown", arguments, progress_callback=recorder.on_progress
            )

        async with anyio.create_task_group() as tasks:
            tasks.start_soon(long_call)
            await wait_for(recorder.first_progress.is_set, timeout=EVENTUALLY)
            await run_cli(capgate, "keys", "revoke", created["id"])
            # The GET stream opened before the revocation still delivers.
            await wait_for(lambda: recorder.list_changed >= 2, timeout=EVENTUALLY)
        assert recorder.progress == list(range(1, 16))
        assert not result["value"].is_error
        assert result["value"].structured_content == {"steps": 15, "done": True}

    with pytest.raises(BaseException) as refused:
        async with mcp_client(url, created["key"], mode="legacy") as client:
            await client.list_tools()
    assert [str(e) for e in leaf_errors(refused.value) if isinstance(e, MCPError)] == ["API key has been revoked"]


@pytest.mark.parametrize("mode", MODES)
async def test_terminate_streams_closes_an_open_call_within_a_second(capgate: CapgateProcess, mode: Mode) -> None:
    created = capgate.create_key("demo")
    recorder = Recorder()
    ended = anyio.Event()
    outcome: list[str] = []

    async def long_call() -> None:
        try:
            async with mcp_client(f"{capgate.url}/mcp", created["key"], mode=mode) as client:
                await client.call_tool(
                    "example_countdown", {"steps": 200, "interval_ms": 100}, progress_callback=recorder.on_progress
                )
                outcome.append("completed")
        except BaseException as error:  # noqa: BLE001 - the test records whatever ends the call
            outcome.append(type(error).__name__)
        finally:
            ended.set()

    async with anyio.create_task_group() as tasks:
        tasks.start_soon(long_call)
        await wait_for(recorder.first_progress.is_set, timeout=EVENTUALLY)
        await run_cli(capgate, "keys", "revoke", created["id"], "--terminate-streams")
        with anyio.fail_after(1.0):
            await ended.wait()
    assert outcome and outcome != ["completed"]
    assert len(recorder.progress) < 200
