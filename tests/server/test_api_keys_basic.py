"""POST /api-keys: a user's email and password (HTTP Basic) create a key for the user's organization."""

from __future__ import annotations

import base64
from datetime import timedelta

import httpx
import pytest

from auth.dbtypes import utcnow
from server.state import AppState
from tests.helpers import DEFAULT_PASSWORD, KeyFactory, basic

BASIC_CHALLENGE = 'Basic realm="capgate", charset="UTF-8"'


def assert_error(response: httpx.Response, status: int, code: str, message: str) -> None:
    assert response.status_code == status, response.text
    assert response.json()["code"] == code
    assert response.json()["error"] == message


async def test_member_creates_a_runtime_key_that_works(client: httpx.AsyncClient, keys: KeyFactory) -> None:
    organization = await keys.organization()
    user = await keys.user(organization)
    response = await client.post("/api-keys", headers=basic(user.email, DEFAULT_PASSWORD), json={"name": "laptop"})
    assert response.status_code == 201
    body = response.json()
    assert body["name"] == "laptop"
    assert body["scopes"] == ["runtime"]
    assert body["createdBy"] == f"user:{user.email}"
    assert body["key"].startswith("cg_live_") and body["prefix"] == body["key"][:12]
    assert body["expiresAt"] is None and body["revoked"] is False and body["lastUsedAt"] is None
    assert (await client.get("/capabilities", headers={"x-api-key": body["key"]})).status_code == 200


async def test_expiry_in_days_and_allowed_tools(client: httpx.AsyncClient, keys: KeyFactory) -> None:
    user = await keys.user(await keys.organization())
    response = await client.post(
        "/api-keys",
        headers=basic(user.email, DEFAULT_PASSWORD),
        json={"name": "ci", "scopes": ["runtime:read"], "allowedTools": ["memory_*"], "expiresInDays": 30},
    )
    assert response.status_code == 201
    body = response.json()
    assert body["allowedTools"] == ["memory_*"]
    assert body["scopes"] == ["runtime:read"]
    assert body["expiresAt"][:10] == (utcnow() + timedelta(days=30)).date().isoformat()


@pytest.mark.parametrize("role", ["admin", "owner"])
async def test_admins_may_create_key_managers(client: httpx.AsyncClient, keys: KeyFactory, role: str) -> None:
    user = await keys.user(await keys.organization(), role=role)
    response = await client.post(
        "/api-keys", headers=basic(user.email, DEFAULT_PASSWORD), json={"name": "ops", "scopes": ["keys:manage"]}
    )
    assert response.status_code == 201
    assert (await client.get("/api/keys", headers={"x-api-key": response.json()["key"]})).status_code == 200


@pytest.mark.parametrize(
    ("role", "scopes", "message"),
    [
        ("member", ["keys:manage"], "Not allowed to grant scope: keys:manage"),
        ("member", ["runtime", "keys:manage"], "Not allowed to grant scope: keys:manage"),
        ("member", ["*"], "Scope * can only be granted from the CLI"),
        ("owner", ["*"], "Scope * can only be granted from the CLI"),
    ],
)
async def test_escalation_is_refused(
    client: httpx.AsyncClient, keys: KeyFactory, role: str, scopes: list[str], message: str
) -> None:
    user = await keys.user(await keys.organization(), role=role)
    response = await client.post(
        "/api-keys", headers=basic(user.email, DEFAULT_PASSWORD), json={"name": "x", "scopes": scopes}
    )
    assert_error(response, 403, "insufficient_scope", message)
    assert "Unauthorized" not in response.text


@pytest.mark.parametrize(
    "header",
    [
        "Basic",
        "Basic !!!not-base64!!!",
        "Basic " + base64.b64encode(b"no-colon-here").decode(),
        "Basic " + base64.b64encode(b":password-without-email").decode(),
        "Basic " + base64.b64encode(b"user@example.com:").decode(),
        "Basic " + base64.b64encode(b"\xff\xfe:\xff").decode(),
        "Bearer cg_live_something",
    ],
    ids=["empty", "not-base64", "no-colon", "no-email", "no-password", "not-utf8", "other-scheme"],
)
async def test_malformed_basic_header(client: httpx.AsyncClient, header: str) -> None:
    response = await client.post("/api-keys", headers={"Authorization": header}, json={"name": "x"})
    assert_error(response, 401, "malformed_credentials", "Malformed HTTP Basic authorization header")
    assert response.headers["www-authenticate"] == BASIC_CHALLENGE


async def test_missing_credentials(client: httpx.AsyncClient) -> None:
    response = await client.post("/api-keys", json={"name": "x"})
    assert_error(response, 401, "missing_credentials", "Missing HTTP Basic credentials (email and password)")
    assert response.headers["www-authenticate"] == BASIC_CHALLENGE


async def test_wrong_password_and_unknown_email_answer_alike(
    client: httpx.AsyncClient, keys: KeyFactory, state: AppState
) -> None:
    user = await keys.user(await keys.organization())
    before = state.passwords.argon2_runs
    wrong = await client.post("/api-keys", headers=basic(user.email, "not the password"), json={"name": "x"})
    unknown = await client.post("/api-keys", headers=basic("nobody@example.com", "whatever"), json={"name": "x"})
    for response in (wrong, unknown):
        assert_error(response, 401, "invalid_credentials", "Invalid email or password")
        assert response.headers["www-authenticate"] == BASIC_CHALLENGE
    assert wrong.content == unknown.content
    # Equal time: an unknown email costs one argon2 verification too (against a dummy hash).
    assert state.passwords.argon2_runs - before == 2


async def test_repeated_failures_for_one_email_are_limited(
    client: httpx.AsyncClient, keys: KeyFactory, state: AppState
) -> None:
    user = await keys.user(await keys.organization())
    for _ in range(state.settings.login_failure_limit):
        response = await client.post("/api-keys", headers=basic(user.email, "guess"), json={"name": "x"})
        assert response.status_code == 401
    runs = state.passwords.argon2_runs
    for password in ("guess again", DEFAULT_PASSWORD):
        response = await client.post("/api-keys", headers=basic(user.email, password), json={"name": "x"})
        assert_error(response, 429, "rate_limited", "Too many failed sign-ins for this email")
        assert 1 <= int(response.headers["retry-after"]) <= 300
    assert state.passwords.argon2_runs == runs  # no argon2 while limited
    for _ in range(state.settings.login_failure_limit):  # unknown emails are limited the same way
        await client.post("/api-keys", headers=basic("ghost@example.com", "guess"), json={"name": "x"})
    response = await client.post("/api-keys", headers=basic("ghost@example.com", "guess"), json={"name": "x"})
    assert response.status_code == 429
    other = await keys.user(await keys.organization())
    ok = await client.post("/api-keys", headers=basic(other.email, DEFAULT_PASSWORD), json={"name": "x"})
    assert ok.status_code == 201


@pytest.mark.parametrize(
    ("body", "message", "details"),
    [
        (
            {"name": "x", "scopes": ["bogus"]},
            "Unknown scope: 'bogus' (known: runtime, runtime:read, keys:manage, integrations:manage, metrics:read, *)",
            "scopes",
        ),
        ({"name": "x", "scopes": []}, "A key needs at least one scope", "scopes"),
        ({"name": "x", "expiresAt": "2001-01-01T00:00:00Z"}, "expiresAt must be in the future", "expiresAt"),
        (
            {"name": "x", "expiresAt": "2999-01-01T00:00:00Z"},
            "expiresAt must be at most 365 days from now",
            "expiresAt",
        ),
        ({"name": "x", "expiresInDays": 366}, "expiresInDays must be between 1 and 365", "expiresInDays"),
        ({"name": "x", "expiresInDays": 0}, "expiresInDays must be between 1 and 365", "expiresInDays"),
        (
            {"name": "x", "expiresInDays": 3, "expiresAt": "2999-01-01T00:00:00Z"},
            "Give either expiresAt or expiresInDays, not both",
            "expiresInDays",
        ),
        ({"name": "x", "expiresAt": "2030-01-01T00:00:00"}, "Invalid request body", "expiresAt"),
        ({"scopes": ["runtime"]}, "Invalid request body", "name"),
        ({"name": "x", "owner": "someone"}, "Invalid request body", "owner"),
        ({"name": "x", "organizationId": "org_other"}, "Invalid request body", "organizationId"),
        ({"name": "   "}, "Key name must not be empty", None),
        ({"name": "x", "allowedTools": ["bad tool"]}, "Invalid allowed tool pattern: 'bad tool'", None),
    ],
)
async def test_bad_bodies(
    client: httpx.AsyncClient, keys: KeyFactory, body: dict[str, object], message: str, details: str | None
) -> None:
    user = await keys.user(await keys.organization())
    response = await client.post("/api-keys", headers=basic(user.email, DEFAULT_PASSWORD), json=body)
    assert_error(response, 400, "invalid_request", message)
    if details:
        assert details in response.json()["details"]


async def test_body_that_is_not_a_json_object(client: httpx.AsyncClient, keys: KeyFactory) -> None:
    user = await keys.user(await keys.organization())
    headers = basic(user.email, DEFAULT_PASSWORD)
    response = await client.post("/api-keys", headers=headers, content=b"{not json")
    assert_error(response, 400, "invalid_request", "Request body is not valid JSON")
    response = await client.post("/api-keys", headers=headers, json=["name"])
    assert_error(response, 400, "invalid_request", "Request body must be a JSON object")
