"""Every row of the DESIGN §3 catalogue that the foundation serves, through the real app."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest

from auth.dbtypes import utcnow
from auth.keys import format_key, random_base62
from tests.helpers import KeyFactory

CAPABILITIES = "/api/runtime/capabilities"


def challenge(message: str) -> str:
    return f'Bearer error="invalid_token", error_description="{message}"'


def assert_error(response: httpx.Response, status: int, code: str, message: str, www_authenticate: str) -> None:
    assert response.status_code == status
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {"error": message, "code": code}
    assert response.headers["www-authenticate"] == www_authenticate


async def test_missing_key(client: httpx.AsyncClient) -> None:
    response = await client.get(CAPABILITIES)
    assert_error(response, 401, "missing_api_key", "Missing API key", challenge("Missing API key"))


@pytest.mark.parametrize(
    "value",
    [
        "nonsense",
        "cg_live_" + "A" * 50,
        format_key("live", random_base62(12), random_base62(32)),
    ],
    ids=["garbage", "bad-checksum", "unknown-id"],
)
async def test_invalid_key(client: httpx.AsyncClient, value: str) -> None:
    response = await client.get(CAPABILITIES, headers={"x-api-key": value})
    assert_error(response, 401, "invalid_api_key", "Invalid API key", challenge("Invalid API key"))


async def test_wrong_secret_of_a_real_key_is_invalid(client: httpx.AsyncClient, keys: KeyFactory) -> None:
    key = await keys.key(await keys.organization())
    forged = format_key("live", key[8:20], random_base62(32))
    response = await client.get(CAPABILITIES, headers={"Authorization": f"Bearer {forged}"})
    assert_error(response, 401, "invalid_api_key", "Invalid API key", challenge("Invalid API key"))


async def test_revoked_key(client: httpx.AsyncClient, keys: KeyFactory) -> None:
    key = await keys.key(await keys.organization())
    assert (await client.get(CAPABILITIES, headers={"x-api-key": key})).status_code == 200
    await keys.revoke(key)
    response = await client.get(CAPABILITIES, headers={"x-api-key": key})
    message = "API key has been revoked"
    assert_error(response, 401, "revoked_api_key", message, challenge(message))


async def test_revoked_key_with_wrong_secret_says_only_invalid(client: httpx.AsyncClient, keys: KeyFactory) -> None:
    key = await keys.key(await keys.organization())
    await keys.revoke(key)
    forged = format_key("live", key[8:20], random_base62(32))
    response = await client.get(CAPABILITIES, headers={"x-api-key": forged})
    assert response.json()["code"] == "invalid_api_key"


async def test_expired_key(client: httpx.AsyncClient, keys: KeyFactory) -> None:
    from sqlalchemy import update

    from auth.models import ApiKey

    key = await keys.key(await keys.organization(), expires_at=utcnow() + timedelta(hours=1))
    async with keys.sessions.begin() as session:
        past = utcnow() - timedelta(seconds=1)
        await session.execute(update(ApiKey).where(ApiKey.id == key[8:20]).values(expires_at=past, updated_at=utcnow()))
    keys.verifier.forget(key[8:20])
    response = await client.get(CAPABILITIES, headers={"x-api-key": key})
    message = "API key has expired"
    assert_error(response, 401, "expired_api_key", message, challenge(message))


async def test_conflicting_credentials(client: httpx.AsyncClient, keys: KeyFactory) -> None:
    organization = await keys.organization()
    first, second = await keys.key(organization), await keys.key(organization)
    response = await client.get(CAPABILITIES, headers={"x-api-key": first, "Authorization": f"Bearer {second}"})
    message = "Conflicting credentials"
    assert_error(response, 401, "conflicting_credentials", message, challenge(message))


async def test_the_same_key_in_both_headers_is_fine(client: httpx.AsyncClient, keys: KeyFactory) -> None:
    key = await keys.key(await keys.organization())
    response = await client.get(CAPABILITIES, headers={"x-api-key": key, "Authorization": f"Bearer {key}"})
    assert response.status_code == 200


async def test_insufficient_scope(client: httpx.AsyncClient, keys: KeyFactory) -> None:
    key = await keys.key(await keys.organization(), scopes=["keys:manage"])
    response = await client.get(CAPABILITIES, headers={"x-api-key": key})
    assert_error(
        response,
        403,
        "insufficient_scope",
        "Missing required scope: runtime",
        'Bearer error="insufficient_scope", scope="runtime"',
    )
    assert "Unauthorized" not in response.text


async def test_key_in_query_string_is_ignored(client: httpx.AsyncClient, keys: KeyFactory) -> None:
    key = await keys.key(await keys.organization())
    for name in ("api_key", "key", "x-api-key", "access_token"):
        response = await client.get(CAPABILITIES, params={name: key})
        assert response.json()["code"] == "missing_api_key"


async def test_mcp_paths_answer_with_a_jsonrpc_error_object(client: httpx.AsyncClient) -> None:
    for path in ("/mcp", "/api/mcp", "/.well-known/oauth-authorization-server", "/register"):
        response = await client.post(path, headers={"x-api-key": "wrong"}, json={})
        assert response.status_code == 401
        assert response.headers["www-authenticate"] == challenge("Invalid API key")
        assert response.json() == {
            "jsonrpc": "2.0",
            "id": None,
            "error": {"code": -32001, "message": "Invalid API key", "data": {"code": "invalid_api_key"}},
        }


async def test_messages_never_echo_the_key(client: httpx.AsyncClient, keys: KeyFactory) -> None:
    key = await keys.key(await keys.organization())
    await keys.revoke(key)
    response = await client.get(CAPABILITIES, headers={"x-api-key": key})
    assert key[20:52] not in response.text
    assert key[8:20] not in response.text
