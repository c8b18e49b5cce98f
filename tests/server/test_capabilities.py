import httpx
import pytest

from tests.helpers import KeyFactory

TEMPLATES = {
    "sessionCreateUrl": "http://capgate.test/api/runtime/sessions",
    "toolInvokeUrlTemplate": "http://capgate.test/api/runtime/tools/{toolName}",
    "sessionToolInvokeUrlTemplate": "http://capgate.test/api/runtime/sessions/{sessionId}/tools/{toolName}",
    "executionEventsUrlTemplate": "http://capgate.test/api/runtime/executions/{executionId}/events",
}


@pytest.mark.parametrize("path", ["/capabilities", "/api/runtime/capabilities"])
@pytest.mark.parametrize("style", ["bearer", "x-api-key"])
async def test_capabilities_with_either_header(
    client: httpx.AsyncClient, keys: KeyFactory, path: str, style: str
) -> None:
    key = await keys.key(await keys.organization())
    headers = {"Authorization": f"Bearer {key}"} if style == "bearer" else {"x-api-key": key}
    response = await client.get(path, headers=headers)
    assert response.status_code == 200
    body = response.json()
    assert isinstance(body["capabilities"], list)
    assert {name: body[name] for name in TEMPLATES} == TEMPLATES


async def test_runtime_read_keys_may_read_capabilities(client: httpx.AsyncClient, keys: KeyFactory) -> None:
    key = await keys.key(await keys.organization(), scopes=["runtime:read"])
    assert (await client.get("/capabilities", headers={"x-api-key": key})).status_code == 200


async def test_scheme_is_case_insensitive_and_whitespace_tolerated(client: httpx.AsyncClient, keys: KeyFactory) -> None:
    key = await keys.key(await keys.organization())
    response = await client.get("/capabilities", headers={"Authorization": f"  bEaReR   {key}  "})
    assert response.status_code == 200


async def test_unknown_route_with_a_good_key_is_a_json_404(client: httpx.AsyncClient, keys: KeyFactory) -> None:
    key = await keys.key(await keys.organization())
    response = await client.get("/.well-known/oauth-protected-resource", headers={"x-api-key": key})
    assert response.status_code == 404
    assert response.json() == {"error": "Not found", "code": "not_found"}


async def test_keys_with_different_tools_each_get_their_own_document(
    client: httpx.AsyncClient, keys: KeyFactory
) -> None:
    org = await keys.organization()
    readers = await keys.key(org, allowed_tools=["memory_r*"])
    everything = await keys.key(org)
    narrow: set[str] = set()
    wide: set[str] = set()
    for _ in range(2):  # twice each, interleaved: a cached document must never be served to the wrong key
        for key, seen in ((readers, narrow), (everything, wide)):
            response = await client.get("/capabilities", headers={"x-api-key": key})
            assert response.status_code == 200
            assert response.headers["content-type"] == "application/json"
            assert int(response.headers["content-length"]) == len(response.content)
            seen.update(tool["name"] for tool in response.json()["capabilities"])
    assert narrow == {"memory_read"}
    assert {"memory_read", "memory_write"} <= wide


async def test_the_documents_urls_follow_the_public_base_url(client: httpx.AsyncClient, keys: KeyFactory) -> None:
    key = await keys.key(await keys.organization())
    first = (await client.get("/capabilities", headers={"x-api-key": key})).json()
    second = (await client.get("/api/runtime/capabilities", headers={"Authorization": f"Bearer {key}"})).json()
    assert first == second
    assert {name: first[name] for name in TEMPLATES} == TEMPLATES
