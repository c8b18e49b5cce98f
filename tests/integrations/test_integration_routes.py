"""Managing integrations and accounts over HTTP: its own scope, clear 400s, changes that show in listings."""

from __future__ import annotations

import httpx

from server.state import AppState
from tests.helpers import DEFAULT_PASSWORD, KeyFactory, basic
from tests.integrations.upstreams import TOKENS, Upstream
from tests.runtime_helpers import headers


async def test_routes_need_integrations_manage_and_only_admins_may_grant_it(
    client: httpx.AsyncClient, keys: KeyFactory
) -> None:
    org = await keys.organization()
    runtime_only = headers(await keys.key(org))
    refused = await client.get("/api/integrations", headers=runtime_only)
    assert refused.status_code == 403
    assert refused.json() == {"error": "Missing required scope: integrations:manage", "code": "insufficient_scope"}

    member, admin = await keys.user(org, role="member"), await keys.user(org, role="admin")
    body = {"name": "integrator", "scopes": ["integrations:manage"]}
    as_member = await client.post("/api-keys", json=body, headers=basic(member.email, DEFAULT_PASSWORD))
    assert as_member.status_code == 403
    as_admin = await client.post("/api-keys", json=body, headers=basic(admin.email, DEFAULT_PASSWORD))
    assert as_admin.status_code == 201, as_admin.text
    assert (await client.get("/api/integrations", headers=headers(as_admin.json()["key"]))).status_code == 200


async def test_bad_integration_input_is_a_400_naming_the_field(client: httpx.AsyncClient, keys: KeyFactory) -> None:
    manager = headers(await keys.key(await keys.organization(), scopes=["integrations:manage", "runtime"]))
    cases = [
        ({"id": "Bad_Id", "url": "http://127.0.0.1:9/mcp"}, "id"),
        ({"id": "crm", "url": "http://user:pw@127.0.0.1:9/mcp"}, "url"),
        ({"id": "crm", "url": "ftp://127.0.0.1/mcp"}, "url"),
        ({"id": "crm", "url": "http://127.0.0.1:9/mcp", "credentialTemplate": "Bearer"}, "credentialTemplate"),
        ({"id": "crm", "url": "http://127.0.0.1:9/mcp", "timeoutSeconds": 0}, "timeoutSeconds"),
        ({"id": "crm", "url": "http://127.0.0.1:9/mcp", "surprise": 1}, "surprise"),
    ]
    for body, field in cases:
        response = await client.post("/api/integrations", json=body, headers=manager)
        assert response.status_code == 400, (body, response.text)
        assert response.json()["code"] == "invalid_request" and field in response.json()["details"], response.text
    assert (await client.get("/api/integrations", headers=manager)).json() == {"integrations": []}


async def test_disabling_and_removing_accounts_changes_the_tools_at_once(
    client: httpx.AsyncClient, keys: KeyFactory, state: AppState, http_upstream: Upstream
) -> None:
    org = await keys.organization()
    manager = headers(await keys.key(org, scopes=["integrations:manage", "runtime"]))
    user = headers(await keys.key(org))
    created = await client.post("/api/integrations", json={"id": "crm", "url": http_upstream.url}, headers=manager)
    assert created.status_code == 201 and created.json()["transport"] == "http"
    ids = []
    for label, token in (("one", TOKENS["a1"]), ("two", TOKENS["a2"])):
        body = {"integrationId": "crm", "label": label, "credential": token}
        connected = await client.post("/api/accounts", json=body, headers=manager)
        assert connected.status_code == 201 and connected.json()["status"] == "ok"
        ids.append(connected.json()["id"])
    duplicate = await client.post(
        "/api/accounts", json={"integrationId": "crm", "label": "one", "credential": "x"}, headers=manager
    )
    assert duplicate.status_code == 409

    async def accounts_of(tool: str) -> list[str]:
        document = (await client.get("/capabilities", headers=user)).json()
        found = [t for t in document["capabilities"] if t["name"] == tool]
        return [a["connectedAccountId"] for a in found[0]["accounts"]] if found else []

    assert await accounts_of("crm_whoami") == ids
    disabled = await client.patch(f"/api/accounts/{ids[0]}", json={"status": "disabled"}, headers=manager)
    assert disabled.json()["status"] == "disabled"
    assert await accounts_of("crm_whoami") == [ids[1]]
    tested = await client.post(f"/api/accounts/{ids[1]}/test", headers=manager)
    assert tested.json()["ok"] is True and "whoami" in tested.json()["tools"]
    assert (await client.delete(f"/api/accounts/{ids[1]}", headers=manager)).status_code == 204
    assert await accounts_of("crm_whoami") == []
    renamed = await client.patch("/api/integrations/crm", json={"title": "Our CRM"}, headers=manager)
    assert renamed.json()["title"] == "Our CRM"
    assert (await client.delete("/api/integrations/crm", headers=manager)).status_code == 204
    assert (await client.get(f"/api/accounts/{ids[0]}", headers=manager)).status_code == 404


async def test_stdio_integrations_run_commands_so_only_the_cli_may_add_them(
    client: httpx.AsyncClient, keys: KeyFactory
) -> None:
    manager = headers(await keys.key(await keys.organization(), scopes=["integrations:manage", "runtime"]))
    body = {"id": "shell", "transport": "stdio", "command": ["sh", "-c", "id"], "credentialEnv": "T"}
    refused = await client.post("/api/integrations", json=body, headers=manager)
    assert refused.status_code == 403 and "capgate CLI" in refused.json()["error"]
    created = await client.post(
        "/api/integrations", json={"id": "crm", "url": "http://127.0.0.1:9/mcp"}, headers=manager
    )
    assert created.status_code == 201
    patched = await client.patch("/api/integrations/crm", json={"command": ["sh"]}, headers=manager)
    assert patched.status_code == 403
    assert (await client.get("/api/integrations/crm", headers=manager)).json()["command"] is None


async def test_only_a_key_that_may_use_every_tool_may_add_integration_tools(
    client: httpx.AsyncClient, keys: KeyFactory, http_upstream: Upstream
) -> None:
    org = await keys.organization()
    full = headers(await keys.key(org, scopes=["integrations:manage", "runtime"]))
    created = await client.post("/api/integrations", json={"id": "crm", "url": http_upstream.url}, headers=full)
    assert created.status_code == 201
    limited = {
        "no runtime": await keys.key(org, scopes=["integrations:manage", "keys:manage"]),
        "read-only runtime": await keys.key(org, scopes=["integrations:manage", "runtime:read"]),
        "allowedTools": await keys.key(org, scopes=["integrations:manage", "runtime"], allowed_tools=["crm_who*"]),
    }
    account = {"integrationId": "crm", "label": "main", "credential": TOKENS["b"]}
    for why, key in limited.items():
        attempts = [
            await client.post("/api/integrations", json={"id": "evil", "url": http_upstream.url}, headers=headers(key)),
            await client.patch("/api/integrations/crm", json={"url": http_upstream.url}, headers=headers(key)),
            await client.post("/api/accounts", json=account, headers=headers(key)),
        ]
        for refused in attempts:
            assert refused.status_code == 403, (why, refused.text)
            assert refused.json()["code"] == "insufficient_scope" and "no allowedTools" in refused.json()["error"]
        assert (await client.get("/api/integrations", headers=headers(key))).status_code == 200, why
    assert [i["id"] for i in (await client.get("/api/integrations", headers=full)).json()["integrations"]] == ["crm"]
    assert (await client.get("/api/accounts", headers=full)).json() == {"accounts": []}
    assert (await client.post("/api/accounts", json=account, headers=full)).status_code == 201


async def test_stored_credentials_are_never_sent_to_a_destination_changed_after_they_were_connected(
    client: httpx.AsyncClient, keys: KeyFactory, http_upstream: Upstream
) -> None:
    manager = headers(await keys.key(await keys.organization(), scopes=["integrations:manage", "runtime"]))
    assert (
        await client.post("/api/integrations", json={"id": "crm", "url": http_upstream.url}, headers=manager)
    ).is_success
    account = {"integrationId": "crm", "label": "main", "credential": TOKENS["b"]}
    account_id = (await client.post("/api/accounts", json=account, headers=manager)).json()["id"]
    elsewhere = http_upstream.url.replace("/mcp", "/collect")
    for change, field in (
        ({"url": elsewhere}, "url"),
        ({"credentialHeader": "X-Leak"}, "credentialHeader"),
        ({"credentialTemplate": "{secret}"}, "credentialTemplate"),
    ):
        refused = await client.patch("/api/integrations/crm", json=change, headers=manager)
        assert refused.status_code == 409, refused.text
        assert "connect again" in refused.json()["details"][field]
    kept = (await client.get("/api/integrations/crm", headers=manager)).json()
    assert (kept["url"], kept["credentialHeader"], kept["credentialTemplate"]) == (
        http_upstream.url,
        "Authorization",
        "Bearer {secret}",
    )
    assert (await client.patch("/api/integrations/crm", json={"title": "CRM"}, headers=manager)).status_code == 200
    assert (await client.delete(f"/api/accounts/{account_id}", headers=manager)).status_code == 204
    moved = await client.patch("/api/integrations/crm", json={"url": elsewhere}, headers=manager)
    assert moved.status_code == 200 and moved.json()["url"] == elsewhere
