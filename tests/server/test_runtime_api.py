from pathlib import Path

import anyio
import httpx

from tests.deadlines import EVENTUALLY
from tests.helpers import KeyFactory
from tests.runtime_helpers import HeldTool, app_client, headers, invoke, parse_sse


async def test_invoke_creates_a_session_and_an_execution(client: httpx.AsyncClient, keys: KeyFactory) -> None:
    key = await keys.key(await keys.organization())
    response = await invoke(client, key, "example_echo", {"text": "hi"})
    assert response.status_code == 200
    body = response.json()
    assert body["result"] == {"text": "hi"} and body["isError"] is False and body["status"] == "succeeded"
    session = (await client.get(f"/api/runtime/sessions/{body['sessionId']}", headers=headers(key))).json()
    assert session["title"] == "Agent Runtime Session" and session["source"] == "api" and session["status"] == "active"
    execution = (await client.get(f"/api/runtime/executions/{body['executionId']}", headers=headers(key))).json()
    assert execution["status"] == "succeeded" and execution["toolName"] == "example_echo"
    assert execution["result"] == {"text": "hi"} and execution["sessionId"] == body["sessionId"]
    assert execution["durationMs"] >= 0


async def test_invoke_in_a_given_session(client: httpx.AsyncClient, keys: KeyFactory) -> None:
    key = await keys.key(await keys.organization())
    created = await client.post("/api/runtime/sessions", json={"title": "mine"}, headers=headers(key))
    assert created.status_code == 201
    session_id = created.json()["id"]
    by_body = await invoke(client, key, "example_echo", {"text": "a"}, sessionId=session_id)
    by_path = await client.post(
        f"/api/runtime/sessions/{session_id}/tools/example_echo", json={"input": {"text": "b"}}, headers=headers(key)
    )
    assert by_body.json()["sessionId"] == session_id == by_path.json()["sessionId"]


async def test_archived_session_refuses_invocations(client: httpx.AsyncClient, keys: KeyFactory) -> None:
    key = await keys.key(await keys.organization())
    session_id = (await client.post("/api/runtime/sessions", headers=headers(key))).json()["id"]
    archived = await client.post(f"/api/runtime/sessions/{session_id}/archive", headers=headers(key))
    assert archived.json()["status"] == "archived"
    response = await client.post(
        f"/api/runtime/sessions/{session_id}/tools/example_echo", json={"input": {"text": "x"}}, headers=headers(key)
    )
    assert response.status_code == 409
    assert response.json()["code"] == "session_archived" and "archived" in response.json()["error"]
    with_header = await invoke(
        client, key, "example_echo", {"text": "x"}, sessionId=session_id, headers={"Idempotency-Key": "k"}
    )
    assert with_header.status_code == 409


async def test_sessions_list_pages_with_a_cursor(client: httpx.AsyncClient, keys: KeyFactory) -> None:
    key = await keys.key(await keys.organization())
    made = [
        (await client.post("/api/runtime/sessions", json={"title": f"s{i}"}, headers=headers(key))).json()["id"]
        for i in range(5)
    ]
    seen: list[str] = []
    cursor = None
    while True:
        params = {"limit": "2", **({"cursor": cursor} if cursor else {})}
        page = (await client.get("/api/runtime/sessions", params=params, headers=headers(key))).json()
        seen += [session["id"] for session in page["sessions"]]
        cursor = page["nextCursor"]
        if cursor is None:
            break
    assert sorted(seen) == sorted(made) and len(seen) == 5
    bad = await client.get("/api/runtime/sessions", params={"cursor": "nope"}, headers=headers(key))
    assert bad.status_code == 400 and "cursor" in bad.json()["details"]
    bad = await client.get("/api/runtime/sessions", params={"limit": "0"}, headers=headers(key))
    assert bad.status_code == 400 and "limit" in bad.json()["details"]


async def test_session_capabilities(client: httpx.AsyncClient, keys: KeyFactory) -> None:
    key = await keys.key(await keys.organization(), scopes=["runtime:read"])
    session_id = (await client.post("/api/runtime/sessions", headers=headers(key))).json()["id"]
    body = (await client.get(f"/api/runtime/sessions/{session_id}/capabilities", headers=headers(key))).json()
    assert body["session"]["id"] == session_id
    assert "memory_write" not in {tool["name"] for tool in body["capabilities"]}


async def test_tool_failure_is_a_200_with_the_message(client: httpx.AsyncClient, keys: KeyFactory) -> None:
    key = await keys.key(await keys.organization())
    response = await invoke(client, key, "example_fail", {"message": "upstream said no"})
    assert response.status_code == 200
    body = response.json()
    assert body == {
        "executionId": body["executionId"],
        "sessionId": body["sessionId"],
        "status": "failed",
        "isError": True,
        "result": None,
        "error": "upstream said no",
    }
    execution = (await client.get(f"/api/runtime/executions/{body['executionId']}", headers=headers(key))).json()
    assert execution["status"] == "failed" and execution["error"] == "upstream said no"


async def test_bad_input_names_the_fields(client: httpx.AsyncClient, keys: KeyFactory) -> None:
    key = await keys.key(await keys.organization())
    response = await invoke(client, key, "example_countdown", {"steps": "many", "interval_ms": -1})
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "invalid_request" and set(body["details"]) == {"steps", "interval_ms"}
    response = await client.post("/api/runtime/tools/example_echo", json={"input": [1]}, headers=headers(key))
    assert response.status_code == 400 and "input" in response.json()["details"]
    response = await client.post(
        "/api/runtime/tools/example_echo",
        content=b"{not json",
        headers=headers(key, **{"content-type": "application/json"}),
    )
    assert response.status_code == 400 and response.json()["error"] == "Request body is not valid JSON"


async def test_unknown_tool_is_404(client: httpx.AsyncClient, keys: KeyFactory) -> None:
    key = await keys.key(await keys.organization())
    response = await invoke(client, key, "no_such_tool")
    assert response.status_code == 404
    assert response.json() == {"error": "Unknown tool: no_such_tool", "code": "not_found"}


async def test_body_over_the_limit_is_413(client: httpx.AsyncClient, keys: KeyFactory) -> None:
    key = await keys.key(await keys.organization())
    response = await invoke(client, key, "memory_write", {"path": "/big.md", "content": "x" * 1_100_000})
    assert response.status_code == 413 and response.json()["code"] == "payload_too_large"
    listing = (await invoke(client, key, "memory_ls", {"path": "/"})).json()
    assert listing["result"]["entries"] == []


async def test_events_of_a_finished_execution(client: httpx.AsyncClient, keys: KeyFactory) -> None:
    key = await keys.key(await keys.organization())
    body = (await invoke(client, key, "example_countdown", {"steps": 3, "interval_ms": 0})).json()
    url = f"/api/runtime/executions/{body['executionId']}/events"
    response = await client.get(url, headers=headers(key))
    assert response.headers["content-type"].startswith("text/event-stream")
    events = parse_sse(response.text)
    assert [event["event"] for event in events] == ["started", "progress", "progress", "progress", "completed"]
    assert [event["id"] for event in events] == ["1", "2", "3", "4", "5"]
    assert events[1]["data"]["data"] == {"progress": 1, "total": 3, "message": "step 1 of 3"}
    assert events[-1]["data"]["data"]["result"] == {"steps": 3, "done": True}
    resumed = parse_sse((await client.get(url, headers=headers(key, **{"Last-Event-ID": "3"}))).text)
    assert [event["id"] for event in resumed] == ["4", "5"]
    bad = await client.get(url, headers=headers(key, **{"Last-Event-ID": "x"}))
    assert bad.status_code == 400


async def test_failed_execution_ends_with_a_failed_event(client: httpx.AsyncClient, keys: KeyFactory) -> None:
    key = await keys.key(await keys.organization())
    body = (await invoke(client, key, "example_fail", {"message": "nope"})).json()
    events = parse_sse(
        (await client.get(f"/api/runtime/executions/{body['executionId']}/events", headers=headers(key))).text
    )
    assert [event["event"] for event in events] == ["started", "failed"]
    assert events[-1]["data"]["data"] == {"status": "failed", "error": "nope"}


async def test_a_session_created_by_a_running_call_is_not_skipped_by_paging(tmp_path: Path, sqlite_url: str) -> None:
    held = HeldTool()
    async with app_client(tmp_path, sqlite_url, [held.tool()], event_flush_seconds=3600) as (client, keys, _state):
        key = await keys.key(await keys.organization())

        async def newest_first() -> list[str]:
            response = await client.get("/api/runtime/sessions?limit=2", headers=headers(key))
            return [session["id"] for session in response.json()["sessions"]]

        older = (await client.post("/api/runtime/sessions", json={}, headers=headers(key))).json()["id"]
        with anyio.fail_after(EVENTUALLY):
            async with anyio.create_task_group() as tasks:
                tasks.start_soon(invoke, client, key, "hold")
                await held.started.wait()  # its session exists for the call, not yet in the database
                newer = (await client.post("/api/runtime/sessions", json={}, headers=headers(key))).json()["id"]
                assert await newest_first() == [newer, older]
                held.release.set()
        # A client that saw [newer, older] looks for anything newer than `newer`: the call's session is there.
        first_page = await newest_first()
        assert first_page[1] == newer and first_page[0] not in (newer, older)
