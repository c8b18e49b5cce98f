"""Issue 14 item 8: odd input that used to end in a 500 (or SQL text) gets the catalogue's 400, on SQLite and
PostgreSQL. Each test sends what the attack run sent."""

from __future__ import annotations

from typing import Any

import anyio
import httpx
import pytest
from starlette.types import Message

from tests.helpers import KeyFactory

Client = tuple[httpx.AsyncClient, KeyFactory]


async def runtime_key(keys: KeyFactory, scopes: list[str] | None = None) -> dict[str, str]:
    return {"x-api-key": await keys.key(await keys.organization(), scopes=scopes)}


def assert_catalogue_400(response: httpx.Response, field: str | None = None) -> dict[str, Any]:
    assert response.status_code == 400, response.text
    body: dict[str, Any] = response.json()
    assert body["code"] == "invalid_request"
    assert "SELECT" not in response.text and "INSERT" not in response.text
    if field is not None:
        assert field in body.get("details", {}), body
    return body


async def test_deeply_nested_json_body(db_client: Client) -> None:
    http, keys = db_client
    depth = 100_000  # well under the 1 MiB body limit
    body = b'{"input": {"text": ' + b"[" * depth + b"]" * depth + b"}}"
    response = await http.post(
        "/api/runtime/tools/example_echo", content=body, headers=await runtime_key(keys), timeout=30
    )
    assert_catalogue_400(response, "body")


@pytest.mark.parametrize("path", ["/api/runtime/sessions?limit=²", "/api/runtime/sessions?limit=٣"])
async def test_unicode_digits_in_limit(db_client: Client, path: str) -> None:
    http, keys = db_client
    assert_catalogue_400(await http.get(path, headers=await runtime_key(keys)), "limit")


@pytest.mark.parametrize("query", ["limit=²", "before=²", "before=" + "9" * 26])
async def test_unicode_digits_and_26_digit_before_in_audit(db_client: Client, query: str) -> None:
    http, keys = db_client
    headers = await runtime_key(keys, ["keys:manage"])
    assert_catalogue_400(await http.get(f"/api/audit?{query}", headers=headers), query.split("=")[0])


async def test_unicode_digit_last_event_id(db_client: Client) -> None:
    http, keys = db_client
    headers = await runtime_key(keys)
    call = await http.post("/api/runtime/tools/example_echo", json={"input": {"text": "x"}}, headers=headers)
    execution_id = call.json()["executionId"]
    response = await http.get(
        f"/api/runtime/executions/{execution_id}/events", headers={**headers, "Last-Event-ID": "²".encode("latin-1")}
    )
    assert_catalogue_400(response, "Last-Event-ID")


async def test_lone_surrogate_in_key_name(db_client: Client) -> None:
    http, keys = db_client
    headers = {**await runtime_key(keys, ["keys:manage"]), "content-type": "application/json"}
    response = await http.post("/api/keys", content=b'{"name": "k\\ud800", "scopes": ["runtime"]}', headers=headers)
    assert_catalogue_400(response, "body")


async def test_nul_in_session_title(db_client: Client) -> None:
    http, keys = db_client
    response = await http.post("/api/runtime/sessions", json={"title": "a\u0000b"}, headers=await runtime_key(keys))
    assert_catalogue_400(response, "title")


async def test_nul_in_memory_content_shows_no_sql(db_client: Client) -> None:
    http, keys = db_client
    response = await http.post(
        "/api/runtime/tools/memory_write",
        json={"input": {"path": "/notes.md", "content": "a\u0000b"}},
        headers=await runtime_key(keys),
    )
    assert_catalogue_400(response, "content")


async def test_client_hanging_up_mid_body(db_client: Client) -> None:
    """The body stops half-way and the client disconnects: a quiet close, no 500 and no stack trace."""
    http, keys = db_client
    transport = http._transport
    assert isinstance(transport, httpx.ASGITransport)
    key = (await runtime_key(keys))["x-api-key"]
    messages: list[Message] = [
        {"type": "http.request", "body": b'{"input": {"text": "hal', "more_body": True},
        {"type": "http.disconnect"},
    ]
    sent: list[Message] = []

    async def receive() -> Message:
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/api/runtime/tools/example_echo",
        "raw_path": b"/api/runtime/tools/example_echo",
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"capgate.test"), (b"x-api-key", key.encode()), (b"content-length", b"100")],
        "client": ("127.0.0.1", 5000),
        "server": ("capgate.test", 80),
    }
    with anyio.fail_after(5):
        await transport.app(scope, receive, send)
    assert sent and sent[0]["status"] != 500
