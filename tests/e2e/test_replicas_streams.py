"""Streams across replicas: 2026-07-28 ``subscriptions/listen`` per key, changes made through another replica."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import httpx
import pytest

from tests.deadlines import EVENTUALLY
from tests.e2e.harness import CapgateProcess
from tests.e2e.test_deploy import replicas  # noqa: F401  (fixture)
from tests.e2e.test_replicas_lb import (  # noqa: F401  (replica_env: fixture)
    execution_running_in,
    legacy_headers,
    open_session,
    replica_env,
)
from tests.e2e.test_runtime_streams import start_countdown

pytestmark = pytest.mark.e2e
MODERN = "2026-07-28"


class Frames:
    """The JSON-RPC messages of one SSE response, as they arrive."""

    def __init__(self, response: httpx.Response) -> None:
        self._lines = response.aiter_lines()
        self.seen: list[dict[str, Any]] = []

    async def next(self) -> dict[str, Any]:
        with anyio.fail_after(EVENTUALLY):
            async for line in self._lines:
                if line.startswith("data:") and line[5:].strip():
                    self.seen.append(json.loads(line[5:]))
                    return self.seen[-1]
        raise AssertionError(f"stream ended after {self.seen}")


@asynccontextmanager
async def listening(url: str, key: str, request_id: int) -> AsyncIterator[Frames]:
    meta = {
        "io.modelcontextprotocol/protocolVersion": MODERN,
        "io.modelcontextprotocol/clientInfo": {"name": "t", "version": "0"},
        "io.modelcontextprotocol/clientCapabilities": {},
    }
    body = {
        "jsonrpc": "2.0",
        "id": request_id,
        "method": "subscriptions/listen",
        "params": {"notifications": {"toolsListChanged": True}, "_meta": meta},
    }
    headers = {
        "x-api-key": key,
        "Accept": "application/json, text/event-stream",
        "MCP-Protocol-Version": MODERN,
        "Mcp-Method": "subscriptions/listen",
    }
    async with (
        httpx.AsyncClient(timeout=httpx.Timeout(10, read=None)) as http,
        http.stream("POST", f"{url}/mcp", json=body, headers=headers) as response,
    ):
        assert response.status_code == 200, await response.aread()
        frames = Frames(response)
        assert (await frames.next())["method"] == "notifications/subscriptions/acknowledged"
        yield frames


async def test_each_key_hears_only_its_own_list_changes_and_terminate_streams_completes_the_listen(
    replicas: list[CapgateProcess],  # noqa: F811
) -> None:
    manager = replicas[0].create_key("demo", "--scope", "*")["key"]
    a, b = replicas[0].create_key("demo"), replicas[0].create_key("demo")
    admin = httpx.AsyncClient(base_url=replicas[0].url, headers={"x-api-key": manager}, timeout=EVENTUALLY)
    listener = replicas[2].url  # changes go through replica 1, listeners sit on replica 3
    async with admin, listening(listener, a["key"], 1) as a_frames, listening(listener, b["key"], 2) as b_frames:
        changed = await admin.patch(f"/api/keys/{b['id']}", json={"allowedTools": ["example_*"]})
        assert changed.status_code == 200, changed.text
        assert (await b_frames.next())["method"] == "notifications/tools/list_changed"

        changed = await admin.patch(f"/api/keys/{a['id']}", json={"allowedTools": ["memory_*"]})
        assert changed.status_code == 200, changed.text
        event = await a_frames.next()
        assert event["method"] == "notifications/tools/list_changed"
        assert event["params"]["_meta"]["io.modelcontextprotocol/subscriptionId"] == 1

        revoked = await admin.delete(f"/api/keys/{a['id']}", params={"terminateStreams": "true"})
        assert revoked.status_code == 200, revoked.text
        completion = await a_frames.next()
        assert completion.get("id") == 1 and "error" not in completion, a_frames.seen
        assert completion["result"]["resultType"] == "complete", completion
        assert completion["result"]["_meta"]["io.modelcontextprotocol/subscriptionId"] == 1, completion
        # B's change never reached A's stream: acknowledged, A's own list change, the completion — nothing else.
        methods = [frame.get("method") for frame in a_frames.seen]
        assert methods == ["notifications/subscriptions/acknowledged", "notifications/tools/list_changed", None]


class Events:
    """The SSE events (``id``, ``retry``, ``data``) of one response, as they arrive."""

    def __init__(self, response: httpx.Response) -> None:
        self._lines = response.aiter_lines()

    async def next(self) -> dict[str, str]:
        event: dict[str, str] = {}
        with anyio.fail_after(EVENTUALLY):
            async for line in self._lines:
                if not line:
                    if event:
                        return event
                    continue
                name, _, value = line.partition(":")
                event[name] = event.get(name, "") + value.lstrip(" ")
        raise AssertionError("stream ended")

    async def next_message(self) -> dict[str, str]:
        while not (event := await self.next()).get("data"):
            pass
        return event


@asynccontextmanager
async def get_stream(url: str, key: str, session_id: str, last_event_id: str | None = None) -> AsyncIterator[Events]:
    headers = {
        **legacy_headers(key, session_id),
        "Accept": "text/event-stream",
        **({"Last-Event-ID": last_event_id} if last_event_id else {}),
    }
    async with (
        httpx.AsyncClient(timeout=httpx.Timeout(10, read=None)) as http,
        http.stream("GET", f"{url}/mcp", headers=headers) as response,
    ):
        assert response.status_code == 200, await response.aread()
        yield Events(response)


async def test_a_dropped_legacy_stream_resumes_through_another_replica_missing_nothing_and_repeating_nothing(
    replicas: list[CapgateProcess],  # noqa: F811
) -> None:
    manager = replicas[0].create_key("demo", "--scope", "*")["key"]
    agent = replicas[0].create_key("demo")
    session_id = open_session(replicas[0].url, agent["key"])  # owned by replica 1
    admin = httpx.AsyncClient(base_url=replicas[0].url, headers={"x-api-key": manager}, timeout=EVENTUALLY)
    patterns = iter([["example_*"], ["memory_*"], ["example_*"], ["memory_*"]])

    async def change_agents_tools() -> None:
        changed = await admin.patch(f"/api/keys/{agent['id']}", json={"allowedTools": next(patterns)})
        assert changed.status_code == 200, changed.text

    async with admin:
        async with get_stream(replicas[0].url, agent["key"], session_id) as stream:
            primer = await stream.next()
            assert primer["id"] and primer["retry"] == "1000" and not primer.get("data")
            await change_agents_tools()
            seen = await stream.next_message()
            assert json.loads(seen["data"])["method"] == "notifications/tools/list_changed"
        # Dropped. Two changes happen while no stream is open.
        await change_agents_tools()
        await change_agents_tools()
        async with get_stream(replicas[2].url, agent["key"], session_id, last_event_id=seen["id"]) as resumed:
            missed = [await resumed.next_message(), await resumed.next_message()]
            await change_agents_tools()
            live = await resumed.next_message()
    ids = [event["id"] for event in (seen, *missed, live)]
    assert len(set(ids)) == 4, ids  # every notification once: the replay repeats nothing, the live one is new
    assert all(json.loads(event["data"])["method"] == "notifications/tools/list_changed" for event in (*missed, live))


async def test_an_execution_running_on_replica_1_streams_live_from_replica_3(
    replicas: list[CapgateProcess],  # noqa: F811
    replica_env: dict[str, str],  # noqa: F811
) -> None:
    key = replicas[0].create_key("demo")["key"]
    async with httpx.AsyncClient(base_url=replicas[0].url, timeout=60) as first:
        session_id, call = await start_countdown(first, key, steps=20, interval_ms=50)
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(call)
            execution_id = await execution_running_in(replica_env, session_id)
            # Replica 3 polls the database only every 30 s here: the events can only come from notifications.
            url = f"{replicas[2].url}/api/runtime/executions/{execution_id}/events"
            types: list[str] = []
            async with (
                httpx.AsyncClient(timeout=httpx.Timeout(10, read=None)) as http,
                http.stream("GET", url, headers={"x-api-key": key, "Accept": "text/event-stream"}) as response,
            ):
                events = Events(response)
                with anyio.fail_after(EVENTUALLY):
                    while not types or types[-1] not in ("completed", "failed", "interrupted"):
                        types.append((await events.next_message())["event"])
    assert types[0] == "started" and types[-1] == "completed"
    assert types.count("progress") >= 1
