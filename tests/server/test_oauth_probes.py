"""OAuth paths that MCP clients probe after a 401/403 name the real problem (DESIGN §3)."""

from __future__ import annotations

import httpx
import pytest

from tests.helpers import KeyFactory

PROBES = ["/.well-known/oauth-protected-resource/mcp", "/.well-known/oauth-authorization-server", "/register"]


@pytest.mark.parametrize("path", PROBES)
async def test_a_key_without_runtime_hears_the_missing_scope_not_a_404(
    client: httpx.AsyncClient, keys: KeyFactory, path: str
) -> None:
    key = await keys.key(await keys.organization(), scopes=["keys:manage"])
    response = await client.post(path, json={"client_name": "probe"}, headers={"x-api-key": key})
    assert response.status_code == 403
    assert response.json()["error"]["message"] == "Missing required scope: runtime"
    assert 'scope="runtime"' in response.headers["www-authenticate"]


@pytest.mark.parametrize("path", PROBES)
async def test_a_good_key_finds_no_oauth_server(client: httpx.AsyncClient, keys: KeyFactory, path: str) -> None:
    key = await keys.key(await keys.organization())
    response = await client.get(path, headers={"x-api-key": key})
    assert response.status_code == 404
    assert response.json() == {"error": "Not found", "code": "not_found"}
