"""Decision records: every refusal kind and every allowed call names the rule that decided and the policy revision."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from sqlalchemy import update
from sqlmodel import col

from auth.dbtypes import utcnow
from auth.models import ApiKey
from server.app import create_app
from server.observability.queries import list_decisions
from server.state import AppState
from tests.conftest import migrate
from tests.helpers import FakeClock, KeyFactory, key_id_of, make_settings
from tests.runtime_helpers import headers, invoke

WRITE = {"path": "/notes/a.md", "content": "hello"}


@dataclass
class Env:
    client: httpx.AsyncClient
    keys: KeyFactory
    state: AppState
    clock: FakeClock

    async def decisions(self, manager: str, **params: Any) -> list[dict[str, Any]]:
        await self.flush()
        response = await self.client.get("/api/audit/decisions", params=params, headers=headers(manager))
        assert response.status_code == 200, response.text
        return list(response.json()["decisions"])

    async def flush(self) -> None:
        await self.state.decisions.flush(self.state.sessions, self.state.runtime.committer.submit)


async def start(tmp_path: Path, database_url: str, **overrides: Any) -> AsyncIterator[Env]:
    await migrate(database_url)
    clock = FakeClock()
    app = create_app(make_settings(tmp_path, database_url, **overrides), clock=clock)
    async with LifespanManager(app):
        state = app.state.capgate
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://capgate.test") as http:
            yield Env(http, KeyFactory(state.sessions, state.hasher, state.verifier), state, clock)


@pytest.fixture
async def env(tmp_path: Path, database_url: str) -> AsyncIterator[Env]:
    async for value in start(tmp_path, database_url):
        yield value


async def set_per_second_limit(state: AppState, key: str, limit: int) -> None:
    async with state.sessions.begin() as session:
        await session.execute(
            update(ApiKey).where(col(ApiKey.id) == key_id_of(key)).values(rate_limit_per_second=limit)
        )


async def test_each_refusal_kind_and_the_allowed_call_name_rule_and_revision(env: Env) -> None:
    org = await env.keys.organization()
    manager = await env.keys.key(org, scopes=["keys:manage"])
    good = await env.keys.key(org)
    reader = await env.keys.key(org, scopes=["runtime:read"])
    globbed = await env.keys.key(org, allowed_tools=["memory_read"])
    revoked = await env.keys.key(org)
    expiring = await env.keys.key(org, expires_at=utcnow() + timedelta(hours=1))
    limited = await env.keys.key(org)
    await env.keys.revoke(revoked)
    await set_per_second_limit(env.state, limited, 1)

    assert (await invoke(env.client, good, "memory_write", WRITE)).status_code == 200
    await env.state.runtime.switches.set_enabled(org.id, "memory_search", False)
    await env.state.watcher.poll_once()  # what every replica's key feed does within key_change_poll_seconds
    assert (await invoke(env.client, good, "memory_search", {"query": "x"})).status_code == 404
    assert (await invoke(env.client, good, "no_such_tool")).status_code == 404
    assert (await invoke(env.client, reader, "memory_write", WRITE)).status_code == 404
    assert (await invoke(env.client, globbed, "memory_ls", {"path": "/"})).status_code == 404
    assert (await env.client.get("/capabilities", headers=headers(manager))).status_code == 403
    assert (await invoke(env.client, revoked, "memory_ls", {"path": "/"})).status_code == 401
    assert (await invoke(env.client, good[:-4] + "AAAA", "memory_ls")).status_code == 401
    assert (await env.client.get("/capabilities")).status_code == 401
    assert (await invoke(env.client, limited, "memory_ls", {"path": "/"})).status_code == 200
    assert (await invoke(env.client, limited, "memory_ls", {"path": "/"})).status_code == 429
    env.clock.advance(7200)
    assert (await invoke(env.client, expiring, "memory_ls", {"path": "/"})).status_code == 401

    def one(rows: list[dict[str, Any]], **match: Any) -> dict[str, Any]:
        found = [row for row in rows if all(row[k] == v for k, v in match.items())]
        assert len(found) == 1, (match, rows)
        return found[0]

    rows = await env.decisions(manager)
    allowed = one(rows, keyId=key_id_of(good), tool="memory_write")
    assert allowed["outcome"] == "allowed" and allowed["reason"] == "allowed"
    assert allowed["rule"] == "scope runtime grants the tool"
    assert allowed["route"] == "POST /api/runtime/tools/{tool_name}" and allowed["policyRevision"] == 1
    assert allowed["requestId"] and allowed["count"] == 1
    # The organization switch is a change of every key's policy: the revision moved on.
    assert one(rows, keyId=key_id_of(good), tool="memory_search")["policyRevision"] == 2
    expected = [
        (good, "memory_search", "tool_disabled", "tool disabled for the organization"),
        (good, "no_such_tool", "unknown_tool", "no such tool is registered"),
        (reader, "memory_write", "tool_not_granted", "scope runtime:read lacks write: tool is not read-only"),
        (globbed, "memory_ls", "tool_not_granted", "allowedTools [memory_read] match no pattern for the tool"),
        (manager, None, "insufficient_scope", "route needs scope runtime; key has keys:manage"),
        (revoked, None, "revoked_api_key", "key revoked at "),
        (limited, None, "rate_limited", "per-second window: 1 requests"),
        (expiring, None, "expired_api_key", "key expired at "),
    ]
    for key, tool, reason, rule in expected:
        row = one(rows, keyId=key_id_of(key), reason=reason)
        assert row["outcome"] == "refused" and row["tool"] == tool
        assert row["rule"].startswith(rule), row
        assert row["policyRevision"] is not None, row
    # Created at 1, revoked: 2, the organization's switch: 3.
    assert one(rows, keyId=key_id_of(revoked), reason="revoked_api_key")["policyRevision"] == 3
    async with env.state.sessions() as session:
        anonymous = await list_decisions(session, organization_id=None, limit=50, outcome="refused")
    unknown_key = {(row.reason, row.rule, row.key_id, row.organization_id) for row in anonymous if row.key_id is None}
    assert unknown_key == {
        ("missing_api_key", "no credential presented", None, None),
        ("invalid_api_key", "key malformed, unknown, or wrong secret", None, None),
    }


async def test_after_an_allow_list_change_the_next_decision_carries_the_new_revision(env: Env) -> None:
    org = await env.keys.organization()
    manager = await env.keys.key(org, scopes=["keys:manage", "runtime"])
    key = await env.keys.key(org, allowed_tools=["memory_*"])
    key_id = key_id_of(key)
    assert (await invoke(env.client, key, "memory_ls", {"path": "/"})).status_code == 200
    changed = await env.client.patch(
        f"/api/keys/{key_id}", json={"allowedTools": ["memory_read"]}, headers=headers(manager)
    )
    assert changed.status_code == 200, changed.text
    assert (await invoke(env.client, key, "memory_ls", {"path": "/"})).status_code == 404
    renamed = await env.client.patch(f"/api/keys/{key_id}", json={"name": "renamed"}, headers=headers(manager))
    assert renamed.status_code == 200
    assert (await invoke(env.client, key, "memory_read", {"path": "/x.md"})).status_code == 200
    rows = await env.decisions(manager, keyId=key_id)
    assert [(row["tool"], row["outcome"], row["policyRevision"]) for row in reversed(rows)] == [
        ("memory_ls", "allowed", 1),
        ("memory_ls", "refused", 2),
        ("memory_read", "allowed", 2),  # a new name is not a new policy
    ]
    assert rows[0]["rule"] == "scope runtime grants the tool; allowedTools glob memory_read matched"
    explained = await env.client.get(
        f"/api/keys/{key_id}/explain", params={"tool": "memory_ls"}, headers=headers(manager)
    )
    assert explained.json() == {
        "keyId": key_id,
        "tool": "memory_ls",
        "allowed": False,
        "reason": "tool_not_granted",
        "rule": "allowedTools [memory_read] match no pattern for the tool",
        "policyRevision": 2,
    }


async def test_the_decision_log_filters_and_pages(env: Env) -> None:
    org = await env.keys.organization()
    manager = await env.keys.key(org, scopes=["keys:manage"])
    key = await env.keys.key(org, scopes=["runtime:read"])
    for _ in range(3):
        await invoke(env.client, key, "memory_ls", {"path": "/"})
    await invoke(env.client, key, "memory_write", WRITE)
    key_id = key_id_of(key)
    assert [r["tool"] for r in await env.decisions(manager, keyId=key_id, outcome="refused")] == ["memory_write"]
    assert len(await env.decisions(manager, keyId=key_id, tool="memory_ls")) == 3
    first = await env.client.get("/api/audit/decisions", params={"keyId": key_id, "limit": 2}, headers=headers(manager))
    page = first.json()
    assert len(page["decisions"]) == 2 and page["nextCursor"]
    rest = await env.decisions(manager, keyId=key_id, limit=2, cursor=page["nextCursor"])
    assert len(rest) == 2 and {r["id"] for r in rest}.isdisjoint({r["id"] for r in page["decisions"]})
    future = (utcnow() + timedelta(days=1)).isoformat()
    assert await env.decisions(manager, keyId=key_id, since=future) == []
    assert len(await env.decisions(manager, keyId=key_id, until=future)) == 4
    for params in ({"outcome": "maybe"}, {"since": "yesterday"}, {"limit": "0"}, {"cursor": "x"}):
        bad = await env.client.get("/api/audit/decisions", params=params, headers=headers(manager))
        assert bad.status_code == 400 and bad.json()["code"] == "invalid_request", params
    no_tool = await env.client.get(f"/api/keys/{key_id}/explain", headers=headers(manager))
    assert no_tool.status_code == 400 and no_tool.json()["details"] == {
        "tool": "tool must name a tool (1 to 200 characters)"
    }


async def test_a_refusal_flood_is_kept_as_single_records_then_one_count_per_minute(
    tmp_path: Path, sqlite_url: str
) -> None:
    async for env in start(tmp_path, sqlite_url, decisions_refusals_per_minute=3, decisions_allowed="aggregate"):
        org = await env.keys.organization()
        manager = await env.keys.key(org, scopes=["keys:manage"])
        key = await env.keys.key(org, scopes=["runtime:read"])
        for _ in range(10):
            assert (await invoke(env.client, key, "memory_write", WRITE)).status_code == 404
        for _ in range(5):
            assert (await invoke(env.client, key, "memory_ls", {"path": "/"})).status_code == 200
        rows = await env.decisions(manager, keyId=key_id_of(key))
        assert [(r["outcome"], r["count"]) for r in rows] == [("refused", 1)] * 3  # the rest wait for the minute's end
        env.clock.advance(60)
        rows = await env.decisions(manager, keyId=key_id_of(key))
        counts = sorted((r["outcome"], r["count"]) for r in rows)
        assert counts == [("allowed", 5), ("refused", 1), ("refused", 1), ("refused", 1), ("refused", 7)]
        assert sum(r["count"] for r in rows if r["outcome"] == "refused") == 10
        aggregated = next(r for r in rows if r["count"] == 7)
        assert aggregated["reason"] == "tool_not_granted" and "aggregated: 7 in this minute" in aggregated["rule"]


async def test_the_request_log_line_carries_trace_ids_decision_reason_and_revision(
    tmp_path: Path, sqlite_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    trace_id, parent = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
    async for env in start(tmp_path, sqlite_url):
        key = await env.keys.key(await env.keys.organization(), scopes=["runtime:read"])
        with caplog.at_level("INFO", logger="capgate.request"):
            traced = headers(key, traceparent=f"00-{trace_id}-{parent}-01")
            response = await env.client.post("/api/runtime/tools/memory_write", json={"input": WRITE}, headers=traced)
        assert response.status_code == 404
        [line] = [record for record in caplog.records if record.name == "capgate.request"]
        logged = line.__dict__
        assert logged["decision_reason"] == "tool_not_granted" and logged["policy_revision"] == 1
        assert logged["trace_id"] == trace_id and logged["span_id"]
        assert logged["request_id"] == response.headers["x-request-id"]
        assert key not in str(logged) and key[20:] not in caplog.text
