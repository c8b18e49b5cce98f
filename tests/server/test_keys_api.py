"""The keys API (/api/keys) through the real app: own organization only, never more than the caller may do."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy import select

from auth.models import ApiKey
from server.settings import Settings
from tests.conftest import migrate
from tests.helpers import FakeClock, KeyFactory, factory_for, key_id_of, running_app

MANAGER = ["runtime", "keys:manage"]


async def manager(keys: KeyFactory, **kwargs: Any) -> tuple[Any, dict[str, str]]:
    organization = await keys.organization()
    key = await keys.key(organization, scopes=MANAGER, **kwargs)
    return organization, {"x-api-key": key}


def assert_error(response: httpx.Response, status: int, code: str, message: str) -> None:
    assert response.status_code == status, response.text
    assert response.json()["code"] == code
    assert response.json()["error"] == message


async def test_list_shows_metadata_only(client: httpx.AsyncClient, keys: KeyFactory) -> None:
    organization, headers = await manager(keys)
    other = await keys.key(organization, name="agent", allowed_tools=["memory_*"])
    await keys.key(await keys.organization(), name="elsewhere")
    response = await client.get("/api/keys", headers=headers)
    assert response.status_code == 200
    listed = {item["name"]: item for item in response.json()["keys"]}
    assert "elsewhere" not in listed
    agent = listed["agent"]
    assert set(agent) == {
        "id", "name", "prefix", "scopes", "allowedTools", "createdBy", "createdAt", "expiresAt",
        "revoked", "revokedAt", "lastUsedAt", "rateLimitPerSecond", "dailyQuota",
    }  # fmt: skip
    assert agent["id"] == key_id_of(other) and agent["prefix"] == other[:12]
    assert agent["allowedTools"] == ["memory_*"]
    assert other[20:52] not in response.text
    assert "argon2" not in response.text


async def test_create_get_and_use(client: httpx.AsyncClient, keys: KeyFactory) -> None:
    _organization, headers = await manager(keys)
    created = await client.post("/api/keys", headers=headers, json={"name": "bot", "scopes": ["runtime:read"]})
    assert created.status_code == 201
    body = created.json()
    assert body["createdBy"] == f"key:{key_id_of(headers['x-api-key'])}"
    fetched = await client.get(f"/api/keys/{body['id']}", headers=headers)
    assert fetched.status_code == 200
    assert "key" not in fetched.json()
    assert fetched.json()["scopes"] == ["runtime:read"]
    assert (await client.get("/capabilities", headers={"x-api-key": body["key"]})).status_code == 200


async def test_create_refuses_more_than_the_caller_has(client: httpx.AsyncClient, keys: KeyFactory) -> None:
    organization = await keys.organization()
    headers = {"x-api-key": await keys.key(organization, scopes=["keys:manage", "runtime:read"])}
    response = await client.post("/api/keys", headers=headers, json={"name": "x", "scopes": ["runtime"]})
    assert_error(response, 403, "insufficient_scope", "Not allowed to grant scope: runtime")
    assert response.headers["www-authenticate"] == 'Bearer error="insufficient_scope"'
    response = await client.post("/api/keys", headers=headers, json={"name": "x", "scopes": ["*"]})
    assert_error(response, 403, "insufficient_scope", "Scope * can only be granted from the CLI")
    response = await client.post("/api/keys", headers=headers, json={"name": "x", "scopes": ["nope"]})
    assert_error(
        response,
        400,
        "invalid_request",
        "Unknown scope: 'nope' (known: runtime, runtime:read, keys:manage, integrations:manage, metrics:read, *)",
    )


async def test_a_caller_limited_to_some_tools_hands_the_limit_on(client: httpx.AsyncClient, keys: KeyFactory) -> None:
    _organization, headers = await manager(keys, allowed_tools=["memory_*"])
    response = await client.post("/api/keys", headers=headers, json={"name": "x"})
    assert response.json()["allowedTools"] == ["memory_*"]
    response = await client.post("/api/keys", headers=headers, json={"name": "y", "allowedTools": ["*"]})
    assert_error(response, 403, "insufficient_scope", "Not allowed to grant tool pattern: *")


ROUTES = [
    ("GET", "/api/keys"),
    ("POST", "/api/keys"),
    ("GET", "/api/keys/{id}"),
    ("PATCH", "/api/keys/{id}"),
    ("POST", "/api/keys/{id}/rotate"),
    ("DELETE", "/api/keys/{id}"),
    ("GET", "/api/audit"),
]


@pytest.mark.parametrize(("method", "path"), ROUTES)
@pytest.mark.parametrize("scopes", [["runtime"], ["runtime:read"]])
async def test_runtime_keys_get_403_on_every_keys_route(
    client: httpx.AsyncClient, keys: KeyFactory, method: str, path: str, scopes: list[str]
) -> None:
    organization = await keys.organization()
    runtime = await keys.key(organization, scopes=scopes)
    target = key_id_of(await keys.key(organization))
    response = await client.request(
        method, path.format(id=target), headers={"x-api-key": runtime}, json={"name": "renamed"}
    )
    assert_error(response, 403, "insufficient_scope", "Missing required scope: keys:manage")
    assert response.headers["www-authenticate"] == 'Bearer error="insufficient_scope", scope="keys:manage"'


@pytest.mark.parametrize(("method", "path"), [r for r in ROUTES if "{id}" in r[1]])
async def test_another_organizations_key_is_not_found(
    client: httpx.AsyncClient, keys: KeyFactory, method: str, path: str
) -> None:
    _organization, headers = await manager(keys)
    foreign = key_id_of(await keys.key(await keys.organization()))
    body = {"name": "mine now"} if method == "PATCH" else None
    response = await client.request(method, path.format(id=foreign), headers=headers, json=body)
    assert_error(response, 404, "not_found", f"Unknown API key: {foreign}")
    async with keys.sessions() as session:
        row = await session.get(ApiKey, foreign)
        assert row is not None and row.revoked_at is None and row.name != "mine now"


async def test_patch_changes_apply_to_the_next_request(client: httpx.AsyncClient, keys: KeyFactory) -> None:
    organization, headers = await manager(keys)
    agent = await keys.key(organization, name="agent")
    assert (await client.get("/capabilities", headers={"x-api-key": agent})).status_code == 200
    response = await client.patch(
        f"/api/keys/{key_id_of(agent)}",
        headers=headers,
        json={"name": "agent-2", "scopes": ["keys:manage"], "allowedTools": ["memory_read"], "rateLimitPerSecond": 10},
    )
    assert response.status_code == 200
    body = response.json()
    assert (body["name"], body["scopes"], body["allowedTools"], body["rateLimitPerSecond"]) == (
        "agent-2", ["keys:manage"], ["memory_read"], 10,
    )  # fmt: skip
    assert (await client.get("/capabilities", headers={"x-api-key": agent})).status_code == 403
    response = await client.patch(f"/api/keys/{key_id_of(agent)}", headers=headers, json={"scopes": ["runtime"]})
    assert response.status_code == 200
    used = await client.get("/capabilities", headers={"x-api-key": agent})
    assert used.headers["x-ratelimit-limit"] == "10"
    cleared = await client.patch(f"/api/keys/{key_id_of(agent)}", headers=headers, json={"allowedTools": None})
    assert cleared.json()["allowedTools"] is None


@pytest.mark.parametrize(
    ("body", "status", "code", "message"),
    [
        ({"scopes": ["*"]}, 403, "insufficient_scope", "Scope * can only be granted from the CLI"),
        (
            {"scopes": ["unknown"]},
            400,
            "invalid_request",
            "Unknown scope: 'unknown' (known: runtime, runtime:read, keys:manage, integrations:manage,"
            " metrics:read, *)",
        ),
        ({"scopes": []}, 400, "invalid_request", "A key needs at least one scope"),
        ({"name": None}, 400, "invalid_request", "name must not be null"),
        (
            {"rateLimitPerSecond": 101},
            400,
            "invalid_request",
            "rateLimitPerSecond must be between 1 and 100 (the organization's limit)",
        ),
        ({"dailyQuota": 0}, 400, "invalid_request", "dailyQuota must be between 1 and 5000 (the organization's limit)"),
        ({"rateLimitPerSecond": "fast"}, 400, "invalid_request", "Invalid request body"),
        ({"revokedAt": None}, 400, "invalid_request", "Invalid request body"),
    ],
)
async def test_bad_patches(
    client: httpx.AsyncClient, keys: KeyFactory, body: dict[str, Any], status: int, code: str, message: str
) -> None:
    organization, headers = await manager(keys)
    agent = await keys.key(organization, name="agent")
    response = await client.patch(f"/api/keys/{key_id_of(agent)}", headers=headers, json=body)
    assert_error(response, status, code, message)
    fetched = (await client.get(f"/api/keys/{key_id_of(agent)}", headers=headers)).json()
    assert (fetched["name"], fetched["scopes"], fetched["rateLimitPerSecond"]) == ("agent", ["runtime"], None)


async def test_a_manager_cannot_touch_a_key_with_more_rights(client: httpx.AsyncClient, keys: KeyFactory) -> None:
    organization = await keys.organization()
    headers = {"x-api-key": await keys.key(organization, scopes=["keys:manage"])}
    stronger = key_id_of(await keys.key(organization, scopes=["runtime"]))
    message = "Not allowed to change a key that has rights you do not have"
    response = await client.patch(f"/api/keys/{stronger}", headers=headers, json={"name": "x"})
    assert_error(response, 403, "insufficient_scope", message)
    response = await client.post(f"/api/keys/{stronger}/rotate", headers=headers)
    assert_error(response, 403, "insufficient_scope", message)
    assert (await client.delete(f"/api/keys/{stronger}", headers=headers)).status_code == 200  # revoking only reduces


async def test_unknown_key_id(client: httpx.AsyncClient, keys: KeyFactory) -> None:
    _organization, headers = await manager(keys)
    response = await client.get("/api/keys/AAAAAAAAAAAA", headers=headers)
    assert_error(response, 404, "not_found", "Unknown API key: AAAAAAAAAAAA")


async def test_revoke_rejects_the_next_request(client: httpx.AsyncClient, keys: KeyFactory) -> None:
    organization, headers = await manager(keys)
    agent = await keys.key(organization)
    assert (await client.get("/capabilities", headers={"x-api-key": agent})).status_code == 200
    response = await client.delete(f"/api/keys/{key_id_of(agent)}", headers=headers)
    assert response.status_code == 200
    assert response.json()["revoked"] is True and response.json()["terminatedStreams"] == 0
    after = await client.get("/capabilities", headers={"x-api-key": agent})
    assert_error(after, 401, "revoked_api_key", "API key has been revoked")


async def test_revoke_with_terminate_streams(client: httpx.AsyncClient, keys: KeyFactory) -> None:
    organization, headers = await manager(keys)
    agent = key_id_of(await keys.key(organization))
    bad = await client.delete(f"/api/keys/{agent}?terminateStreams=maybe", headers=headers)
    assert_error(bad, 400, "invalid_request", "terminateStreams must be true or false")
    assert (await client.get(f"/api/keys/{agent}", headers=headers)).json()["revoked"] is False
    response = await client.delete(f"/api/keys/{agent}?terminateStreams=true", headers=headers)
    assert response.status_code == 200 and response.json()["revoked"] is True


async def test_rotate_overlap_then_old_key_expires(settings: Settings) -> None:
    await migrate(settings.resolved_database_url)
    clock = FakeClock()
    async with running_app(settings, clock=clock) as (application, client):
        keys = factory_for(application)
        organization = await keys.organization()
        headers = {"x-api-key": await keys.key(organization, scopes=MANAGER)}
        old = await keys.key(organization, name="agent", allowed_tools=["memory_*"])
        assert (await client.get("/capabilities", headers={"x-api-key": old})).status_code == 200
        response = await client.post(f"/api/keys/{key_id_of(old)}/rotate", headers=headers, json={"overlapSeconds": 60})
        assert response.status_code == 201
        body = response.json()
        new = body["key"]
        assert (body["name"], body["scopes"], body["allowedTools"]) == ("agent", ["runtime"], ["memory_*"])
        assert body["replaces"]["id"] == key_id_of(old)
        for key in (old, new):
            assert (await client.get("/capabilities", headers={"x-api-key": key})).status_code == 200
        clock.advance(61)
        expired = await client.get("/capabilities", headers={"x-api-key": old})
        assert_error(expired, 401, "expired_api_key", "API key has expired")
        assert (await client.get("/capabilities", headers={"x-api-key": new})).status_code == 200


async def test_rotate_defaults_to_a_day_of_overlap(client: httpx.AsyncClient, keys: KeyFactory) -> None:
    organization, headers = await manager(keys)
    old = key_id_of(await keys.key(organization))
    response = await client.post(f"/api/keys/{old}/rotate", headers=headers)
    assert response.status_code == 201
    replaced = response.json()["replaces"]
    created = (await client.get(f"/api/keys/{response.json()['id']}", headers=headers)).json()
    from datetime import datetime

    overlap = datetime.fromisoformat(replaced["expiresAt"]) - datetime.fromisoformat(created["createdAt"])
    assert abs(overlap.total_seconds() - 86_400) < 5


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"overlapSeconds": -1}, "overlapSeconds must be between 0 and 2592000"),
        ({"overlapSeconds": 2_592_001}, "overlapSeconds must be between 0 and 2592000"),
        ({"overlapSeconds": "1h"}, "Invalid request body"),
    ],
)
async def test_bad_rotations(client: httpx.AsyncClient, keys: KeyFactory, body: dict[str, Any], message: str) -> None:
    organization, headers = await manager(keys)
    old = key_id_of(await keys.key(organization))
    response = await client.post(f"/api/keys/{old}/rotate", headers=headers, json=body)
    assert_error(response, 400, "invalid_request", message)
    async with keys.sessions() as session:
        rows = (await session.execute(select(ApiKey).where(ApiKey.organization_id == organization.id))).scalars()
        assert all(row.expires_at is None for row in rows)


async def test_a_revoked_key_cannot_be_rotated(client: httpx.AsyncClient, keys: KeyFactory) -> None:
    organization, headers = await manager(keys)
    old = await keys.key(organization)
    await keys.revoke(old)
    response = await client.post(f"/api/keys/{key_id_of(old)}/rotate", headers=headers)
    assert_error(response, 409, "key_revoked", "A revoked key cannot be rotated")


async def test_last_used_is_kept_in_memory_and_written_in_batches(
    client: httpx.AsyncClient, keys: KeyFactory, state: Any
) -> None:
    organization, headers = await manager(keys)
    agent = await keys.key(organization)
    for _ in range(20):
        await client.get("/capabilities", headers={"x-api-key": agent})
    async with keys.sessions() as session:
        assert (await session.get(ApiKey, key_id_of(agent))).last_used_at is None  # no write per request
    listed = (await client.get(f"/api/keys/{key_id_of(agent)}", headers=headers)).json()
    from datetime import datetime

    assert abs((datetime.fromisoformat(listed["lastUsedAt"]) - state.now()).total_seconds()) < 60
    from server.usage_flusher import UsageFlusher

    await UsageFlusher(state).flush()
    async with keys.sessions() as session:
        stored = (await session.get(ApiKey, key_id_of(agent))).last_used_at
    assert stored is not None and abs((stored - state.now()).total_seconds()) < 60


async def test_openapi_describes_the_key_routes(client: httpx.AsyncClient) -> None:
    document = (await client.get("/openapi.json")).json()
    for path, methods in {
        "/api-keys": {"post"},
        "/api/keys": {"get", "post"},
        "/api/keys/{keyId}": {"get", "patch", "delete"},
        "/api/keys/{keyId}/rotate": {"post"},
        "/api/audit": {"get"},
    }.items():
        assert methods <= set(document["paths"][path])
    assert "429" in document["paths"]["/capabilities"]["get"]["responses"]
