"""Integration tools from a real upstream: listing, the account choice, and calls reaching the right account."""

from __future__ import annotations

from pathlib import Path

import anyio
import httpx
from starlette.applications import Starlette

from server.state import AppState
from tests.helpers import KeyFactory
from tests.integrations.helpers import connect
from tests.integrations.upstreams import TOKENS, Upstream, start_http_upstream
from tests.mcp_helpers import mcp_client
from tests.runtime_helpers import headers, invoke


async def test_two_accounts_list_both_and_the_call_reaches_the_chosen_one(
    client: httpx.AsyncClient, state: AppState, keys: KeyFactory, http_upstream: Upstream
) -> None:
    org = await keys.organization()
    ids = await connect(state, org.id, "crm", {"sales": TOKENS["a1"], "support": TOKENS["a2"]}, url=http_upstream.url)
    key = await keys.key(org)

    document = (await client.get("/api/runtime/capabilities", headers=headers(key))).json()
    tools = {tool["name"]: tool for tool in document["capabilities"]}
    whoami = tools["crm_whoami"]
    assert whoami["kind"] == "integration"
    assert whoami["isReadOnly"] is True
    assert tools["crm_create_note"]["isReadOnly"] is False
    assert whoami["supportsIdempotency"] is False
    assert whoami["accounts"] == [
        {"connectedAccountId": ids["sales"], "integrationId": "crm", "backend": "mcp-http"},
        {"connectedAccountId": ids["support"], "integrationId": "crm", "backend": "mcp-http"},
    ]
    assert tools["crm_create_note"]["parameters"]["properties"]["text"]["type"] == "string"

    ambiguous = await invoke(client, key, "crm_whoami", {})
    assert ambiguous.status_code == 409
    assert ambiguous.json() == {
        "error": 'Capability "crm_whoami" requires connectedAccountId because it is available on multiple'
        " connected accounts",
        "code": "account_required",
        "details": {"availableAccounts": whoami["accounts"]},
    }

    chosen = await invoke(client, key, "crm_whoami", {}, connectedAccountId=ids["support"])
    assert chosen.status_code == 200, chosen.text
    assert chosen.json()["result"] == {"result": f"token={TOKENS['a2']}"}
    assert chosen.json()["isError"] is False
    execution = (
        await client.get(f"/api/runtime/executions/{chosen.json()['executionId']}", headers=headers(key))
    ).json()
    assert execution["connectedAccountId"] == ids["support"]


async def test_an_account_not_on_the_capability_is_a_400_naming_the_field(
    client: httpx.AsyncClient, state: AppState, keys: KeyFactory, http_upstream: Upstream
) -> None:
    org_a, org_b = await keys.organization(), await keys.organization()
    await connect(state, org_a.id, "crm", {"sales": TOKENS["a1"], "support": TOKENS["a2"]}, url=http_upstream.url)
    b_ids = await connect(state, org_b.id, "crm", {"main": TOKENS["b"]}, url=http_upstream.url)
    key = await keys.key(org_a)

    response = await invoke(client, key, "crm_whoami", {}, connectedAccountId=b_ids["main"])
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_request"
    assert "connectedAccountId" in response.json()["details"]


async def test_one_account_needs_no_choice_and_upstream_errors_are_tool_errors(
    client: httpx.AsyncClient, state: AppState, keys: KeyFactory, http_upstream: Upstream
) -> None:
    org = await keys.organization()
    await connect(state, org.id, "crm", {"main": TOKENS["b"]}, url=http_upstream.url)
    key = await keys.key(org)

    ok = await invoke(client, key, "crm_create_note", {"text": "hello"})
    assert ok.status_code == 200 and ok.json()["result"] == {"result": "created: hello"}
    failed = await invoke(client, key, "crm_fail", {"reason": "quota exceeded upstream"})
    assert failed.status_code == 200
    assert failed.json()["isError"] is True
    assert "quota exceeded upstream" in failed.json()["error"]
    assert "Traceback" not in failed.json()["error"]


async def test_read_only_keys_see_only_read_only_upstream_tools(
    client: httpx.AsyncClient, state: AppState, keys: KeyFactory, http_upstream: Upstream
) -> None:
    org = await keys.organization()
    await connect(state, org.id, "crm", {"main": TOKENS["b"]}, url=http_upstream.url)
    reader = await keys.key(org, scopes=["runtime:read"])
    narrowed = await keys.key(org, allowed_tools=["crm_who*"])

    for key in (reader, narrowed):
        names = {t["name"] for t in (await client.get("/capabilities", headers=headers(key))).json()["capabilities"]}
        assert "crm_whoami" in names and "crm_create_note" not in names
        refused = await invoke(client, key, "crm_create_note", {"text": "x"})
        assert refused.status_code == 404


async def test_mcp_offers_the_account_choice_and_names_the_accounts_when_missing(
    app: Starlette, state: AppState, keys: KeyFactory, http_upstream: Upstream
) -> None:
    org = await keys.organization()
    ids = await connect(state, org.id, "crm", {"sales": TOKENS["a1"], "support": TOKENS["a2"]}, url=http_upstream.url)
    key = await keys.key(org)

    async with mcp_client("http://capgate.test/mcp", key, app=app) as mcp:
        listed = {tool.name: tool for tool in (await mcp.list_tools()).tools}
        choice = listed["crm_whoami"].input_schema["properties"]["connectedAccountId"]
        assert choice["enum"] == [ids["sales"], ids["support"]]
        assert "connectedAccountId" not in listed["crm_whoami"].input_schema.get("required", [])
        assert listed["crm_whoami"].annotations.read_only_hint is True

        missing = await mcp.call_tool("crm_whoami", {})
        assert missing.is_error
        text = missing.content[0].text
        assert ids["sales"] in text and ids["support"] in text and "connectedAccountId" in text

        chosen = await mcp.call_tool("crm_whoami", {"connectedAccountId": ids["sales"]})
        assert not chosen.is_error
        assert chosen.structured_content == {"result": f"token={TOKENS['a1']}"}
        assert chosen.meta["executionId"].startswith("exe_")


async def test_an_organization_can_switch_off_an_integration_tool(
    client: httpx.AsyncClient, state: AppState, keys: KeyFactory, http_upstream: Upstream
) -> None:
    org = await keys.organization()
    await connect(state, org.id, "crm", {"main": TOKENS["b"]}, url=http_upstream.url)
    key = await keys.key(org)
    await state.runtime.switches.set_enabled(org.id, "crm_create_note", False)
    names = {t["name"] for t in (await client.get("/capabilities", headers=headers(key))).json()["capabilities"]}
    assert "crm_whoami" in names and "crm_create_note" not in names
    assert (await invoke(client, key, "crm_create_note", {"text": "x"})).status_code == 404


async def test_an_idempotency_key_reaches_the_upstream_once(
    client: httpx.AsyncClient, state: AppState, keys: KeyFactory, http_upstream: Upstream
) -> None:
    org = await keys.organization()
    await connect(state, org.id, "crm", {"main": TOKENS["b"]}, url=http_upstream.url)
    key = await keys.key(org)
    marker = f"once-{org.id}"
    answers = [
        await invoke(client, key, "crm_create_note", {"text": marker}, headers={"Idempotency-Key": marker})
        for _ in range(2)
    ]
    assert answers[0].json()["executionId"] == answers[1].json()["executionId"]
    assert [e for e in http_upstream.events() if e.get("text") == marker] == [
        {"event": "call", "token": TOKENS["b"], "tool": "create_note", "text": marker}
    ]


async def test_an_upstream_that_changes_its_tools_changes_the_capabilities_without_a_test(
    client: httpx.AsyncClient, state: AppState, keys: KeyFactory, tmp_path: Path
) -> None:
    upstream = start_http_upstream(tmp_path)  # its own: this test changes the upstream's tool list
    try:
        org = await keys.organization()
        await connect(state, org.id, "crm", {"main": TOKENS["b"]}, url=upstream.url)
        key = await keys.key(org)

        async def names() -> set[str]:
            document = (await client.get("/capabilities", headers=headers(key))).json()
            return {tool["name"] for tool in document["capabilities"]}

        assert "crm_fresh" not in await names()
        assert (await invoke(client, key, "crm_whoami")).json()["isError"] is False  # connects; capgate listens
        await anyio.to_thread.run_sync(upstream.wait_for, "listening", "subscriptions/listen")
        added = await invoke(client, key, "crm_add_tool", {"name": "fresh"})
        assert added.json()["result"] == {"result": "added fresh"}, added.text
        with anyio.fail_after(15):
            while "crm_fresh" not in await names():
                await anyio.sleep(0.05)
        assert (await invoke(client, key, "crm_fresh")).json()["result"] == {"result": "fresh was added"}
    finally:
        upstream.stop()
