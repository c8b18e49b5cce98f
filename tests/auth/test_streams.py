"""The stream registry on its own: the per-key stream limit, the time bound and the kill switch."""

from __future__ import annotations

import json
from typing import Any

import anyio
import pytest
from starlette.types import Message, Receive, Scope, Send

from auth.streams import StreamRegistry, TooManyStreams, is_event_stream_response, run_tracked


def sse_get() -> Scope:
    return {"type": "http", "method": "GET", "path": "/mcp", "headers": [(b"accept", b"text/event-stream")]}


async def endless_sse(scope: Scope, receive: Receive, send: Send) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/event-stream")]})
    await send({"type": "http.response.body", "body": b"event: message\ndata: {}\n\n", "more_body": True})
    await anyio.sleep_forever()


async def never_answers(scope: Scope, receive: Receive, send: Send) -> None:
    await anyio.sleep_forever()


async def run(registry: StreamRegistry, app: Any, *, jsonrpc: bool, key_id: str = "key") -> list[Message]:
    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    request = registry.open(key_id, is_stream=True)
    try:
        await run_tracked(app, sse_get(), receive, send, request, jsonrpc=jsonrpc, registry=registry)
    finally:
        registry.close(request)
    return sent


def test_responses_count_as_streams_by_their_content_type() -> None:
    def start(content_type: bytes) -> Message:
        return {"type": "http.response.start", "status": 200, "headers": [(b"Content-Type", content_type)]}

    assert is_event_stream_response(start(b"text/event-stream; charset=utf-8"))
    assert is_event_stream_response(start(b"TEXT/EVENT-STREAM"))
    assert not is_event_stream_response(start(b"application/json"))


async def test_stream_cap_bypass_without_accept_header_is_refused() -> None:
    """Attack (issue 14 item 2): requests that never say Accept: text/event-stream but get a stream anyway."""
    registry = StreamRegistry(max_streams_per_key=2)
    plain_get: Scope = {"type": "http", "method": "GET", "path": "/mcp", "headers": [(b"accept", b"*/*")]}
    results: list[list[Message]] = []

    async def request() -> None:
        sent: list[Message] = []

        async def send(message: Message) -> None:
            sent.append(message)

        async def receive() -> Message:
            return {"type": "http.request", "body": b"", "more_body": False}

        tracked = registry.open("k")
        try:
            await run_tracked(endless_sse, plain_get, receive, send, tracked, jsonrpc=True, registry=registry)
        finally:
            registry.close(tracked)
        results.append(sent)

    async with anyio.create_task_group() as tasks:
        for _ in range(2):
            tasks.start_soon(request)
        with anyio.fail_after(2):
            while registry.open_streams("k") < 2:
                await anyio.sleep(0.01)
        with anyio.fail_after(2):
            await request()
        refused = results[0]
        assert refused[0]["status"] == 429
        assert json.loads(refused[1]["body"])["error"]["data"]["code"] == "too_many_streams"
        assert registry.open_streams("k") == 2
        tasks.cancel_scope.cancel()


async def test_a_key_at_its_stream_limit_gets_429_for_the_next() -> None:
    registry = StreamRegistry(max_streams_per_key=2)
    first, second = registry.open("k", is_stream=True), registry.open("k", is_stream=True)
    registry.open("k", is_stream=False)  # plain requests do not count
    registry.open("other", is_stream=True)  # nor do other keys' streams
    with pytest.raises(TooManyStreams) as refused:
        registry.open("k", is_stream=True)
    assert (refused.value.status, refused.value.code) == (429, "too_many_streams")
    assert refused.value.headers()["Retry-After"] == "1"
    registry.close(first)
    registry.open("k", is_stream=True)
    assert registry.open_streams("k") == 2
    registry.close(second)


async def test_the_kill_switch_ends_an_open_sse_stream_with_a_final_jsonrpc_error() -> None:
    registry = StreamRegistry()
    result: list[list[Message]] = []
    with anyio.fail_after(5):  # a kill switch that does not end the stream fails here instead of hanging
        async with anyio.create_task_group() as tasks:

            async def stream() -> None:
                result.append(await run(registry, endless_sse, jsonrpc=True))

            tasks.start_soon(stream)
            while registry.open_streams("key") == 0:
                await anyio.sleep(0.01)
            assert registry.terminate("key") == 1
    messages = result[0]
    assert messages[-1]["more_body"] is False
    final = messages[-1]["body"].decode()
    assert final.startswith("event: message\ndata: ")
    payload = json.loads(final.split("data: ", 1)[1])
    assert payload["error"]["message"] == "API key has been revoked"
    assert registry.open_streams("key") == 0


async def test_a_request_cut_before_it_answered_gets_the_revoked_error() -> None:
    registry = StreamRegistry()
    result: list[list[Message]] = []
    with anyio.fail_after(5):
        async with anyio.create_task_group() as tasks:

            async def request() -> None:
                result.append(await run(registry, never_answers, jsonrpc=False))

            tasks.start_soon(request)
            while registry.open_streams("key") == 0:
                await anyio.sleep(0.01)
            registry.terminate("key")
    start, body = result[0]
    assert start["status"] == 401
    assert json.loads(body["body"]) == {"error": "API key has been revoked", "code": "revoked_api_key"}


async def test_no_stream_outlives_max_stream_seconds() -> None:
    registry = StreamRegistry(max_stream_seconds=0.2)
    with anyio.fail_after(5):
        messages = await run(registry, endless_sse, jsonrpc=False)
    final = messages[-1]
    assert final["more_body"] is False
    assert b'"code": "stream_time_limit"' in final["body"]
