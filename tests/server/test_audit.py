"""The audit log: lifecycle actions and aggregated authentication failures, and never a secret anywhere."""

from __future__ import annotations

import json
import logging
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from auth.keys import format_key, random_base62
from auth.models import AuditEvent
from server.settings import Settings
from server.usage_flusher import UsageFlusher
from tests.conftest import migrate
from tests.helpers import DEFAULT_PASSWORD, FakeClock, basic, factory_for, key_id_of, running_app


@pytest.fixture
async def clocked(settings: Settings) -> Any:
    await migrate(settings.resolved_database_url)
    clock = FakeClock()
    async with running_app(settings, clock=clock) as (application, client):
        yield application, client, clock


async def test_each_lifecycle_action_is_recorded(clocked: Any) -> None:
    application, client, _clock = clocked
    keys = factory_for(application)
    organization = await keys.organization()
    admin = await keys.user(organization, role="admin")
    created = await client.post(
        "/api-keys",
        headers=basic(admin.email, DEFAULT_PASSWORD),
        json={"name": "ops", "scopes": ["keys:manage", "runtime"]},
    )
    manager = {"x-api-key": created.json()["key"]}
    manager_id = created.json()["id"]
    agent = (await client.post("/api/keys", headers=manager, json={"name": "agent"})).json()["id"]
    await client.patch(f"/api/keys/{agent}", headers=manager, json={"name": "agent-1", "rateLimitPerSecond": 5})
    rotated = (await client.post(f"/api/keys/{agent}/rotate", headers=manager, json={"overlapSeconds": 10})).json()
    await client.delete(f"/api/keys/{rotated['id']}", headers=manager)
    await keys.key(await keys.organization(), name="other-org")  # must not show up

    response = await client.get("/api/audit", headers=manager)
    assert response.status_code == 200
    events = list(reversed(response.json()["events"]))
    summary = [(e["action"], e["keyId"], e["actor"]) for e in events]
    by_manager = f"key:{manager_id}"
    assert summary == [
        ("key.created", manager_id, f"user:{admin.email}"),
        ("key.created", agent, by_manager),
        ("key.updated", agent, by_manager),
        ("key.rotated", agent, by_manager),
        ("key.created", rotated["id"], by_manager),
        ("key.revoked", rotated["id"], by_manager),
    ]
    assert all(e["source"] == "127.0.0.1" and e["createdAt"] for e in events)
    assert events[2]["details"] == {"fields": ["name", "rate_limit_per_second"]}
    assert events[3]["details"]["replacedBy"] == rotated["id"]

    only = await client.get("/api/audit", headers=manager, params={"action": "key.revoked", "limit": 5})
    assert [e["keyId"] for e in only.json()["events"]] == [rotated["id"]]
    by_key = await client.get("/api/audit", headers=manager, params={"keyId": agent})
    assert {e["action"] for e in by_key.json()["events"]} == {"key.created", "key.updated", "key.rotated"}
    older = await client.get("/api/audit", headers=manager, params={"before": events[1]["id"]})
    assert [e["id"] for e in older.json()["events"]] == [events[0]["id"]]


@pytest.mark.parametrize(("param", "value"), [("limit", "0"), ("limit", "501"), ("limit", "ten"), ("before", "-3")])
async def test_bad_audit_queries(clocked: Any, param: str, value: str) -> None:
    application, client, _clock = clocked
    keys = factory_for(application)
    manager = {"x-api-key": await keys.key(await keys.organization(), scopes=["keys:manage"])}
    response = await client.get("/api/audit", headers=manager, params={param: value})
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_request"
    assert response.json()["error"].startswith(f"{param} must be")


async def test_auth_failures_are_aggregated_per_key_reason_and_minute(clocked: Any) -> None:
    application, client, clock = clocked
    state = application.state.capgate
    keys = factory_for(application)
    organization = await keys.organization()
    manager = {"x-api-key": await keys.key(organization, scopes=["keys:manage"])}
    target = await keys.key(organization)
    forged = [format_key("live", key_id_of(target), random_base62(32)) for _ in range(3)]
    for attempt in forged + forged[:1]:
        assert (await client.get("/capabilities", headers={"x-api-key": attempt})).status_code == 401
    await keys.revoke(target)
    await client.get("/capabilities", headers={"x-api-key": target})
    await client.get("/capabilities", headers={"x-api-key": "garbage"})
    await client.get("/capabilities")  # no credential at all: not an authentication failure

    flusher = UsageFlusher(state)
    await flusher.flush()
    failures = await client.get("/api/audit", headers=manager, params={"action": "auth.failed"})
    assert failures.json()["events"] == []  # the minute is not over yet
    clock.advance(60)
    await flusher.flush()
    events = (await client.get("/api/audit", headers=manager, params={"action": "auth.failed"})).json()["events"]
    assert sorted((e["keyId"], e["details"]["reason"], e["details"]["count"]) for e in events) == [
        (key_id_of(target), "invalid_api_key", 4),
        (key_id_of(target), "revoked_api_key", 1),
    ]
    assert all(e["actor"] == "anonymous" and e["source"] == "127.0.0.1" for e in events)
    async with state.sessions() as session:
        orphans = (await session.execute(select(AuditEvent).where(AuditEvent.organization_id.is_(None)))).scalars()
        assert [(e.key_id, e.details["reason"]) for e in orphans] == [(None, "invalid_api_key")]


async def test_no_audit_row_log_line_or_error_body_contains_a_secret(
    clocked: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    application, client, clock = clocked
    keys = factory_for(application)
    organization = await keys.organization()
    admin = await keys.user(organization, role="owner")
    secrets_seen: list[str] = [DEFAULT_PASSWORD, "wrong password 123"]
    bodies: list[str] = []

    async def call(method: str, path: str, **kwargs: Any) -> httpx.Response:
        response = await client.request(method, path, **kwargs)
        bodies.append(response.text if response.status_code >= 400 else "")
        return response

    created = await call(
        "POST",
        "/api-keys",
        headers=basic(admin.email, DEFAULT_PASSWORD),
        json={"name": "a", "scopes": ["keys:manage", "runtime"]},
    )
    manager_key = created.json()["key"]
    manager = {"x-api-key": manager_key}
    secrets_seen.append(manager_key)
    await call("POST", "/api-keys", headers=basic(admin.email, "wrong password 123"), json={"name": "b"})
    agent = (await call("POST", "/api/keys", headers=manager, json={"name": "agent"})).json()
    secrets_seen.append(agent["key"])
    rotated = (
        await call("POST", f"/api/keys/{agent['id']}/rotate", headers=manager, json={"overlapSeconds": 1})
    ).json()
    secrets_seen.append(rotated["key"])
    clock.advance(2)
    await call("GET", "/capabilities", headers={"x-api-key": agent["key"]})  # expired
    forged = format_key("live", agent["id"], random_base62(32))
    secrets_seen.append(forged)
    await call("GET", "/capabilities", headers={"x-api-key": forged})
    await call("GET", "/capabilities", headers={"x-api-key": manager_key, "Authorization": f"Bearer {rotated['key']}"})
    await call("PATCH", f"/api/keys/{agent['id']}", headers=manager, json={"scopes": ["*"]})
    await call("DELETE", f"/api/keys/{rotated['id']}", headers=manager)
    await call("GET", "/capabilities", headers={"x-api-key": rotated["key"]})
    clock.advance(60)
    await UsageFlusher(application.state.capgate).flush()

    async with application.state.capgate.sessions() as session:
        rows = (await session.execute(select(AuditEvent))).scalars().all()
    assert {row.action for row in rows} >= {"key.created", "key.rotated", "key.revoked", "auth.failed"}
    audit_text = json.dumps([row.model_dump(mode="json") for row in rows])
    logs = "\n".join(record.getMessage() + json.dumps(record.__dict__, default=str) for record in caplog.records)
    for secret in secrets_seen:
        needle = secret[20:52] if secret.startswith("cg_") else secret
        assert needle not in audit_text
        assert needle not in logs
        assert all(needle not in body for body in bodies)


async def test_anonymous_flood_writes_a_bounded_number_of_auth_failed_rows(clocked: Any) -> None:
    """Attack (issue 14, info): anonymous traffic could write ~1.4 M auth.failed rows a day (1,000 a minute)."""
    application, client, clock = clocked
    state = application.state.capgate
    for _ in range(200):  # unknown but well-formed key ids: one bucket each, before the cap
        forged = format_key("live", random_base62(12), random_base62(32))
        assert (await client.get("/capabilities", headers={"x-api-key": forged})).status_code == 401
    for index in range(100):  # garbage from 100 addresses: anonymous, one bucket per source before the cap
        transport = httpx.ASGITransport(app=application, client=(f"10.0.{index // 250}.{index % 250}", 4000))
        async with httpx.AsyncClient(transport=transport, base_url="http://capgate.test") as other:
            assert (await other.get("/capabilities", headers={"x-api-key": "garbage"})).status_code == 401
    clock.advance(60)
    await UsageFlusher(state).flush()
    async with state.sessions() as session:
        rows = (await session.execute(select(AuditEvent).where(AuditEvent.action == "auth.failed"))).scalars().all()
    assert len(rows) <= 50 + 10 + 2  # key ids, anonymous sources, one overflow row per reason
    assert sum(row.details["count"] for row in rows) == 300  # nothing goes uncounted
