"""Another organization's data is invisible through every route: 404, never 403, never a leak.

``isolation(method, path)`` marks the test that covers a route; the last test enumerates
the app's routes and fails for any authenticated route without one.
"""

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import anyio
import httpx
import pytest
from asgi_lifespan import LifespanManager
from starlette.applications import Starlette
from starlette.routing import Mount, Route

from auth import store
from server.app import create_app
from server.settings import Settings
from server.state import AppState
from server.wiring import memory_limits
from tests.conftest import migrate
from tests.deadlines import EVENTUALLY
from tests.helpers import KeyFactory, make_settings
from tests.runtime_helpers import HeldTool, app_client, headers, invoke
from tests.server.hostile_plugin import ATTACKS, hostile_tools
from tools.catalog import default_registry
from tools.registry import ToolRegistry

F = TypeVar("F", bound=Callable[..., Any])
COVERED: dict[tuple[str, str], str] = {}
SECRET = "the launch code is 0000"


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    """Every isolation test runs on SQLite and on PostgreSQL. Integrations here point at 127.0.0.1, which
    capgate refuses for URLs set over HTTP unless the operator allows it, as this does."""
    return make_settings(tmp_path, database_url, integration_allowed_urls=["127.0.0.1:*"])


def isolation(method: str, path: str) -> Callable[[F], F]:
    def mark(test: F) -> F:
        COVERED[(method, path)] = test.__name__
        return test

    return mark


@dataclass
class TwoOrgs:
    a_key: str
    b_key: str
    a_org_id: str
    a_session: str
    a_execution: str


@pytest.fixture
async def orgs(client: httpx.AsyncClient, keys: KeyFactory) -> TwoOrgs:
    org_a = await keys.organization()
    a_key, b_key = await keys.key(org_a), await keys.key(await keys.organization())
    written = await invoke(client, a_key, "memory_write", {"path": "/topics/x.md", "content": SECRET})
    assert written.status_code == 200 and not written.json()["isError"]
    body = written.json()
    return TwoOrgs(a_key, b_key, org_a.id, body["sessionId"], body["executionId"])


def assert_unknown(response: httpx.Response, what: str) -> None:
    assert response.status_code == 404, response.text
    assert response.json() == {"error": f"Unknown {what}", "code": "not_found"}
    assert SECRET not in response.text


@isolation("POST", "/api/runtime/tools/{tool_name}")
async def test_memory_of_another_org_is_invisible(client: httpx.AsyncClient, orgs: TwoOrgs) -> None:
    listing = (await invoke(client, orgs.b_key, "memory_ls", {"path": "/"})).json()
    assert listing["result"]["entries"] == []
    read = (await invoke(client, orgs.b_key, "memory_read", {"path": "/topics/x.md"})).json()
    assert read["isError"] and read["error"] == "No such document: /topics/x.md"
    found = (await invoke(client, orgs.b_key, "memory_search", {"query": "launch code"})).json()
    assert found["result"]["results"] == []
    own = (await invoke(client, orgs.a_key, "memory_search", {"query": "launch code"})).json()
    assert [hit["path"] for hit in own["result"]["results"]] == ["/topics/x.md"]
    in_their_session = await invoke(client, orgs.b_key, "memory_ls", {"path": "/"}, sessionId=orgs.a_session)
    assert_unknown(in_their_session, "session")
    with_key = await invoke(
        client, orgs.b_key, "memory_ls", {}, sessionId=orgs.a_session, headers={"Idempotency-Key": "i"}
    )
    assert_unknown(with_key, "session")


@isolation("GET", "/api/runtime/capabilities")
@isolation("GET", "/capabilities")
async def test_one_orgs_tool_switches_do_not_touch_another(
    client: httpx.AsyncClient, orgs: TwoOrgs, state: AppState
) -> None:
    await state.runtime.switches.set_enabled(orgs.a_org_id, "memory_search", False)
    for path in ("/capabilities", "/api/runtime/capabilities"):
        a_tools = {t["name"] for t in (await client.get(path, headers=headers(orgs.a_key))).json()["capabilities"]}
        b_tools = {t["name"] for t in (await client.get(path, headers=headers(orgs.b_key))).json()["capabilities"]}
        assert "memory_search" not in a_tools and "memory_search" in b_tools


@isolation("POST", "/api/runtime/sessions")
@isolation("GET", "/api/runtime/sessions")
async def test_session_lists_hold_only_the_own_org(client: httpx.AsyncClient, orgs: TwoOrgs) -> None:
    b_session = (await client.post("/api/runtime/sessions", headers=headers(orgs.b_key))).json()["id"]
    a_ids = {
        s["id"] for s in (await client.get("/api/runtime/sessions", headers=headers(orgs.a_key))).json()["sessions"]
    }
    b_ids = {
        s["id"] for s in (await client.get("/api/runtime/sessions", headers=headers(orgs.b_key))).json()["sessions"]
    }
    assert a_ids == {orgs.a_session} and b_ids == {b_session}


@isolation("GET", "/api/runtime/sessions/{session_id}")
async def test_session_of_another_org_is_404(client: httpx.AsyncClient, orgs: TwoOrgs) -> None:
    assert_unknown(await client.get(f"/api/runtime/sessions/{orgs.a_session}", headers=headers(orgs.b_key)), "session")
    assert (await client.get(f"/api/runtime/sessions/{orgs.a_session}", headers=headers(orgs.a_key))).status_code == 200


@isolation("POST", "/api/runtime/sessions/{session_id}/archive")
async def test_archiving_another_orgs_session_is_404(client: httpx.AsyncClient, orgs: TwoOrgs) -> None:
    url = f"/api/runtime/sessions/{orgs.a_session}"
    assert_unknown(await client.post(f"{url}/archive", headers=headers(orgs.b_key)), "session")
    assert (await client.get(url, headers=headers(orgs.a_key))).json()["status"] == "active"


@isolation("GET", "/api/runtime/sessions/{session_id}/capabilities")
async def test_capabilities_of_another_orgs_session_is_404(client: httpx.AsyncClient, orgs: TwoOrgs) -> None:
    url = f"/api/runtime/sessions/{orgs.a_session}/capabilities"
    assert_unknown(await client.get(url, headers=headers(orgs.b_key)), "session")


@isolation("POST", "/api/runtime/sessions/{session_id}/tools/{tool_name}")
async def test_invoking_in_another_orgs_session_is_404(client: httpx.AsyncClient, orgs: TwoOrgs) -> None:
    url = f"/api/runtime/sessions/{orgs.a_session}/tools/memory_read"
    response = await client.post(url, json={"input": {"path": "/topics/x.md"}}, headers=headers(orgs.b_key))
    assert_unknown(response, "session")


@isolation("GET", "/api/runtime/executions/{execution_id}")
async def test_execution_of_another_org_is_404(client: httpx.AsyncClient, orgs: TwoOrgs) -> None:
    url = f"/api/runtime/executions/{orgs.a_execution}"
    assert_unknown(await client.get(url, headers=headers(orgs.b_key)), "execution")
    assert (await client.get(url, headers=headers(orgs.a_key))).status_code == 200


@isolation("GET", "/api/runtime/executions/{execution_id}/events")
async def test_events_of_another_orgs_execution_are_404(client: httpx.AsyncClient, orgs: TwoOrgs) -> None:
    url = f"/api/runtime/executions/{orgs.a_execution}/events"
    assert_unknown(await client.get(url, headers=headers(orgs.b_key)), "execution")


async def manager_of_other_org(keys: KeyFactory) -> dict[str, str]:
    return headers(await keys.key(await keys.organization(), scopes=["keys:manage"]))


@isolation("GET", "/api/keys/{key_id}")
@isolation("PATCH", "/api/keys/{key_id}")
@isolation("DELETE", "/api/keys/{key_id}")
@isolation("POST", "/api/keys/{key_id}/rotate")
@pytest.mark.parametrize(("method", "suffix"), [("GET", ""), ("PATCH", ""), ("DELETE", ""), ("POST", "/rotate")])
async def test_another_orgs_key_cannot_be_read_changed_rotated_or_revoked(
    client: httpx.AsyncClient, keys: KeyFactory, orgs: TwoOrgs, method: str, suffix: str
) -> None:
    target = orgs.a_key[8:20]
    body = {"name": "taken over"} if method == "PATCH" else ({} if method == "POST" else None)
    response = await client.request(
        method, f"/api/keys/{target}{suffix}", headers=await manager_of_other_org(keys), json=body
    )
    assert response.status_code == 404 and response.json()["code"] == "not_found"
    assert (await client.get("/capabilities", headers=headers(orgs.a_key))).status_code == 200


@isolation("GET", "/api/keys")
@isolation("POST", "/api/keys")
async def test_key_listing_and_creation_stay_in_the_callers_org(
    client: httpx.AsyncClient, keys: KeyFactory, orgs: TwoOrgs
) -> None:
    manager = await manager_of_other_org(keys)
    listed = (await client.get("/api/keys", headers=manager)).json()["keys"]
    assert orgs.a_key[8:20] not in {key["id"] for key in listed}
    created = await client.post(
        "/api/keys", headers=manager, json={"name": "sneaky", "organizationId": orgs.a_org_id, "scopes": ["runtime"]}
    )
    if created.status_code == 201:  # an unknown field may be ignored, but never honoured
        new_key = created.json()["key"]
        listing = (await invoke(client, new_key, "memory_ls", {"path": "/"})).json()
        assert SECRET not in str(listing) and "/topics/x.md" not in str(listing)
    else:
        assert created.status_code == 400


@isolation("GET", "/api/audit")
async def test_audit_log_shows_only_the_callers_org(client: httpx.AsyncClient, keys: KeyFactory, orgs: TwoOrgs) -> None:
    events = (await client.get("/api/audit", headers=await manager_of_other_org(keys))).json()
    assert orgs.a_key[8:20] not in str(events)
    assert orgs.a_org_id not in str(events)


@dataclass
class AIntegration:
    integration_id: str
    account_id: str


A_CREDENTIAL = "a-upstream-credential-do-not-leak"


@pytest.fixture
async def a_crm(state: AppState, orgs: TwoOrgs) -> AIntegration:
    """Org A's integration with a connected account and a tool listing (no upstream needed to be invisible)."""
    from server.integrations import accounts, store

    async with state.sessions.begin() as session:
        await store.create_integration(
            session,
            organization_id=orgs.a_org_id,
            integration_id="crm",
            title="A's CRM",
            transport="http",
            url="http://127.0.0.1:9/mcp",
            actor="test",
        )
        account = await accounts.connect_account(
            session,
            organization_id=orgs.a_org_id,
            integration_id="crm",
            label="sales@a",
            credential=A_CREDENTIAL,
            vault=state.integrations.vault,
            actor="test",
        )
        await accounts.store_tool_listing(
            session, account_id=account.id, tools=[{"name": "whoami", "inputSchema": {"type": "object"}}]
        )
    state.integrations.invalidate()
    return AIntegration("crm", account.id)


async def integration_manager_of_other_org(keys: KeyFactory) -> dict[str, str]:
    return headers(await keys.key(await keys.organization(), scopes=["integrations:manage", "runtime"]))


@isolation("GET", "/api/integrations")
@isolation("POST", "/api/integrations")
@isolation("GET", "/api/accounts")
@isolation("POST", "/api/accounts")
async def test_integration_and_account_lists_hold_only_the_callers_org(
    client: httpx.AsyncClient, keys: KeyFactory, orgs: TwoOrgs, a_crm: AIntegration
) -> None:
    manager = await integration_manager_of_other_org(keys)
    assert (await client.get("/api/integrations", headers=manager)).json() == {"integrations": []}
    assert (await client.get("/api/accounts", headers=manager)).json() == {"accounts": []}
    onto_theirs = {"integrationId": "crm", "label": "mine", "credential": "x"}
    assert_unknown(await client.post("/api/accounts", headers=manager, json=onto_theirs), "integration: crm")
    own = await client.post("/api/integrations", headers=manager, json={"id": "crm", "url": "http://127.0.0.1:9/mcp"})
    assert own.status_code == 201
    a_manager = headers(await keys.key(await keys.organization(), scopes=["integrations:manage"]))
    assert (await client.get("/api/integrations", headers=a_manager)).json() == {"integrations": []}
    for listing in ("/api/integrations", "/api/accounts"):
        assert a_crm.account_id not in (await client.get(listing, headers=manager)).text


@isolation("GET", "/api/integrations/{integration_id}")
@isolation("PATCH", "/api/integrations/{integration_id}")
@isolation("DELETE", "/api/integrations/{integration_id}")
@isolation("GET", "/api/accounts/{account_id}")
@isolation("PATCH", "/api/accounts/{account_id}")
@isolation("DELETE", "/api/accounts/{account_id}")
@isolation("POST", "/api/accounts/{account_id}/test")
async def test_another_orgs_integration_and_account_cannot_be_read_changed_tested_or_removed(
    client: httpx.AsyncClient, keys: KeyFactory, state: AppState, orgs: TwoOrgs, a_crm: AIntegration
) -> None:
    manager = await integration_manager_of_other_org(keys)
    integration, account = f"/api/integrations/{a_crm.integration_id}", f"/api/accounts/{a_crm.account_id}"
    attempts = [
        ("GET", integration, None),
        ("PATCH", integration, {"url": "http://127.0.0.1:1/steal"}),
        ("DELETE", integration, None),
        ("GET", account, None),
        ("PATCH", account, {"status": "disabled"}),
        ("POST", f"{account}/test", None),
        ("DELETE", account, None),
    ]
    for method, url, body in attempts:
        response = await client.request(method, url, headers=manager, json=body)
        assert response.status_code == 404, (method, url, response.text)
        assert A_CREDENTIAL not in response.text
    a_tools = await state.integrations.tools(orgs.a_org_id)
    assert [account.connected_account_id for account in a_tools["crm_whoami"].accounts] == [a_crm.account_id]


async def test_another_orgs_integration_tools_are_invisible_and_uncallable(
    app: Starlette, client: httpx.AsyncClient, orgs: TwoOrgs, a_crm: AIntegration
) -> None:
    from tests.mcp_helpers import mcp_client

    a_names = {
        t["name"] for t in (await client.get("/capabilities", headers=headers(orgs.a_key))).json()["capabilities"]
    }
    assert "crm_whoami" in a_names
    b_names = {
        t["name"] for t in (await client.get("/capabilities", headers=headers(orgs.b_key))).json()["capabilities"]
    }
    assert "crm_whoami" not in b_names
    assert_unknown(await invoke(client, orgs.b_key, "crm_whoami", {}), "tool: crm_whoami")
    chosen = await invoke(client, orgs.b_key, "crm_whoami", {}, connectedAccountId=a_crm.account_id)
    assert_unknown(chosen, "tool: crm_whoami")
    async with mcp_client("http://capgate.test/mcp", orgs.b_key, app=app) as mcp:
        assert "crm_whoami" not in {tool.name for tool in (await mcp.list_tools()).tools}
        called = await mcp.call_tool("crm_whoami", {"connectedAccountId": a_crm.account_id})
    assert called.is_error and a_crm.account_id not in str(called.content)


@isolation("*", "/mcp")
@isolation("*", "/api/mcp")
@pytest.mark.parametrize("path", ["/mcp", "/api/mcp"])
async def test_mcp_tools_of_another_org_see_none_of_its_memory(app: Starlette, orgs: TwoOrgs, path: str) -> None:
    from tests.mcp_helpers import mcp_client

    async with mcp_client(f"http://capgate.test{path}", orgs.b_key, app=app) as client:
        read = await client.call_tool("memory_read", {"path": "/topics/x.md"})
        search = await client.call_tool("memory_search", {"query": "launch code"})
        listing = await client.call_tool("memory_ls", {"path": "/"})
    for result in (read, search, listing):
        assert SECRET not in str(result.content) and SECRET not in str(result.structured_content)
    assert read.is_error


@isolation("*", "/.well-known/{rest:path}")
@isolation("*", "/register")
@isolation("*", "/authorize")
@isolation("*", "/token")
async def test_oauth_probe_paths_hold_nothing_of_any_org(client: httpx.AsyncClient, orgs: TwoOrgs) -> None:
    for path in ("/.well-known/oauth-authorization-server", "/register", "/authorize", "/token"):
        response = await client.post(path, json={"client_name": orgs.a_org_id}, headers={"x-api-key": orgs.b_key})
        assert response.json() == {"error": "Not found", "code": "not_found"}


@isolation("*", "/admin")
async def test_a_console_session_sees_nothing_of_another_org(
    client: httpx.AsyncClient, orgs: TwoOrgs, keys: KeyFactory, state: AppState
) -> None:
    from tests.helpers import key_id_of
    from tests.server.admin.conftest import Console

    a_key_id = key_id_of(orgs.a_key)
    async with state.sessions() as session:
        b_org_id = (await store.get_api_key(session, key_id=key_id_of(orgs.b_key))).organization_id
        b_org = await store.get_organization(session, ref=b_org_id)
    b_owner = await keys.user(b_org, role="owner")
    assert (
        await client.get("/admin/keys", headers={"x-api-key": orgs.a_key})
    ).status_code == 303  # keys sign no one in
    console = Console(client)
    assert (await console.sign_in(b_owner.email)).status_code == 303
    for path in (f"/admin/keys/{a_key_id}", f"/admin/usage?key={a_key_id}"):
        response = await client.get(path)
        assert response.status_code == 404 and SECRET not in response.text
    for action in ("revoke", "rotate"):
        assert (await console.post(f"/admin/keys/{a_key_id}/{action}", {})).status_code == 404
    pages = [await client.get(path) for path in ("/admin/keys", "/admin/audit")]
    assert all(a_key_id not in page.text and orgs.a_org_id not in page.text for page in pages)
    assert "No events match" in (await client.get(f"/admin/audit?key={a_key_id}")).text
    usage = (await client.get("/admin/usage")).text
    assert "memory_write" not in usage  # org A's call is not in org B's top tools
    assert (await client.get("/capabilities", headers={"x-api-key": orgs.a_key})).status_code == 200


@isolation("GET", "/api/audit/decisions")
async def test_decision_log_shows_only_the_callers_org(
    client: httpx.AsyncClient, keys: KeyFactory, orgs: TwoOrgs, state: AppState
) -> None:
    await state.decisions.flush(state.sessions, state.runtime.committer.submit)
    manager = await manager_of_other_org(keys)
    decisions = (await client.get("/api/audit/decisions", headers=manager)).json()["decisions"]
    assert orgs.a_key[8:20] not in str(decisions)
    by_key = await client.get("/api/audit/decisions", params={"keyId": orgs.a_key[8:20]}, headers=manager)
    assert by_key.json()["decisions"] == []


@isolation("GET", "/api/keys/{key_id}/explain")
async def test_explaining_another_orgs_key_is_404(client: httpx.AsyncClient, keys: KeyFactory, orgs: TwoOrgs) -> None:
    url = f"/api/keys/{orgs.a_key[8:20]}/explain"
    response = await client.get(url, params={"tool": "memory_read"}, headers=await manager_of_other_org(keys))
    assert_unknown(response, f"API key: {orgs.a_key[8:20]}")


@isolation("GET", "/metrics")
async def test_metrics_hold_no_key_ids_and_no_data(client: httpx.AsyncClient, keys: KeyFactory, orgs: TwoOrgs) -> None:
    assert (await client.get("/metrics", headers=await manager_of_other_org(keys))).status_code == 403
    operator = await keys.key(await keys.organization(), scopes=["metrics:read"])
    exposition = (await client.get("/metrics", headers=headers(operator))).text
    assert "capgate_tool_executions_total" in exposition
    assert orgs.a_key[8:20] not in exposition and orgs.b_key[8:20] not in exposition and SECRET not in exposition


@pytest.fixture
async def hostile_app(settings: Settings) -> AsyncIterator[Starlette]:
    await migrate(settings.resolved_database_url)
    application = create_app(
        settings, tools=ToolRegistry([*default_registry(memory_limits(settings)).all(), *hostile_tools()])
    )
    async with LifespanManager(application):
        yield application


@pytest.mark.parametrize("attack", sorted(ATTACKS))
async def test_a_hostile_plugin_cannot_reach_another_orgs_rows_through_ctx_db(
    hostile_app: Starlette, attack: str
) -> None:
    state: AppState = hostile_app.state.capgate
    keys = KeyFactory(sessions=state.sessions, hasher=state.hasher, verifier=state.verifier)
    transport = httpx.ASGITransport(app=hostile_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://capgate.test") as client:
        org_a = await keys.organization()
        a_key, b_key = await keys.key(org_a), await keys.key(await keys.organization())
        await invoke(client, a_key, "memory_write", {"path": "/secret.md", "content": SECRET})
        await invoke(client, b_key, "memory_write", {"path": "/mine.md", "content": "B's own note"})
        response = await invoke(client, b_key, "hostile_attack", {"attack": attack, "target": org_a.id})
        assert response.status_code == 200, response.text
        body = response.json()
        assert SECRET not in response.text and org_a.id not in str(body["result"])
        if body["isError"]:
            assert body["error"].startswith("ForbiddenStatement: "), body["error"]
        else:
            assert body["result"] in ([], 0, 1, [["/mine.md", "B's own note"]], [["B's own note"]]), body["result"]
        own = (await invoke(client, a_key, "memory_ls", {"path": "/"})).json()["result"]["entries"]
        assert [entry["path"] for entry in own] == ["/secret.md"]
        read = (await invoke(client, a_key, "memory_read", {"path": "/secret.md"})).json()["result"]
        assert read["content"] == SECRET


def authenticated_routes(app: Starlette) -> set[tuple[str, str]]:
    found: set[tuple[str, str]] = set()
    for route in app.routes:
        if getattr(route, "public", False):
            continue
        if isinstance(route, Route) and route.methods is None:  # a mounted ASGI app (MCP) takes every method
            found.add(("*", route.path))
        elif isinstance(route, Route):
            found |= {(method, route.path) for method in route.methods if method != "HEAD"}
        elif isinstance(route, Mount):
            found.add(("*", route.path))
        else:
            found.add(("*", str(getattr(route, "path", route))))
    return found


def test_every_authenticated_route_has_an_isolation_test(app: Starlette) -> None:
    missing = sorted(authenticated_routes(app) - set(COVERED))
    assert not missing, f"routes without an isolation test (add one with @isolation(method, path)): {missing}"


async def test_events_of_another_orgs_running_execution_are_404(tmp_path: Path, database_url: str) -> None:
    held = HeldTool()
    async with app_client(tmp_path, database_url, [held.tool()]) as (client, keys, _state):
        a_key, b_key = await keys.key(await keys.organization()), await keys.key(await keys.organization())
        with anyio.fail_after(EVENTUALLY):
            async with anyio.create_task_group() as tasks:
                tasks.start_soon(invoke, client, a_key, "hold")
                await held.started.wait()
                url = f"/api/runtime/executions/{held.execution_ids[0]}/events"
                response = await client.get(url, headers=headers(b_key))
                held.release.set()
        assert_unknown(response, "execution")
        assert "holding" not in response.text
