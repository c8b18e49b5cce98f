"""/metrics after a scripted mix: each counter moves by the right amount; no key id, secret or unbounded label."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from asgi_lifespan import LifespanManager
from prometheus_client.parser import text_string_to_metric_families
from pydantic import BaseModel
from sqlalchemy import update
from sqlmodel import col

from auth.models import ApiKey
from server.app import create_app
from server.state import AppState
from server.wiring import memory_limits
from tests.conftest import migrate
from tests.helpers import FakeClock, KeyFactory, key_id_of, make_settings
from tests.runtime_helpers import headers, invoke
from tests.server.mcp_raw import mcp_call
from tools.catalog import default_registry
from tools.registry import Tool, ToolRegistry

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]
STARTED: list[str] = []


class Nothing(BaseModel):
    pass


async def wait_at_gate(ctx: Any, _args: Nothing) -> dict[str, str]:
    STARTED.append(ctx.execution_id)
    await anyio.Event().wait()  # until cancelled
    return {"never": "reached"}


@dataclass
class Env:
    app: Any
    client: httpx.AsyncClient
    state: AppState
    keys: KeyFactory
    operator: str = ""

    async def scrape(self) -> tuple[str, Samples]:
        response = await self.client.get("/metrics", headers=headers(self.operator))
        assert response.status_code == 200, response.text
        assert response.headers["content-type"].startswith("text/plain")
        samples: Samples = {}
        for family in text_string_to_metric_families(response.text):
            for sample in family.samples:
                samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
        return response.text, samples


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[Env]:
    STARTED.clear()
    settings = make_settings(tmp_path, f"sqlite+aiosqlite:///{tmp_path / 'c.db'}", metrics_max_organizations=1)
    await migrate(settings.resolved_database_url)
    tools = ToolRegistry(
        [
            *default_registry(memory_limits(settings)).all(),
            Tool(name="wait_at_gate", description="waits", input_model=Nothing, handler=wait_at_gate, read_only=True),
        ]
    )
    app = create_app(settings, tools=tools, clock=FakeClock())
    async with LifespanManager(app):
        state = app.state.capgate
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://capgate.test") as http:
            env = Env(app, http, state, KeyFactory(state.sessions, state.hasher, state.verifier))
            env.operator = await env.keys.key(await env.keys.organization(), scopes=["metrics:read"])
            yield env


def delta(before: Samples, after: Samples, name: str, **labels: str) -> float:
    key = (name, frozenset(labels.items()))
    return after.get(key, 0.0) - before.get(key, 0.0)


async def until(condition: Any, seconds: float = 5.0) -> None:
    with anyio.fail_after(seconds):
        while not await condition():
            await anyio.sleep(0.01)


async def test_a_scripted_mix_moves_each_counter_by_the_right_amount(env: Env) -> None:
    keys, client = env.keys, env.client
    org = await keys.organization()
    manager = await keys.key(org, scopes=["keys:manage", "runtime"])
    good, reader, limited = await keys.key(org), await keys.key(org, scopes=["runtime:read"]), await keys.key(org)
    revokee, streamer = await keys.key(org), await keys.key(org)
    keys_only = await keys.key(org, scopes=["keys:manage"])
    async with env.state.sessions.begin() as session:
        await session.execute(
            update(ApiKey).where(col(ApiKey.id) == key_id_of(limited)).values(rate_limit_per_second=2)
        )
    _, before = await env.scrape()

    for n in range(3):
        assert (await invoke(client, good, "memory_write", {"path": f"/n{n}.md", "content": "x"})).status_code == 200
    assert (await client.get("/capabilities")).status_code == 401
    assert (await client.get("/capabilities", headers=headers("cg_live_" + "x" * 40))).status_code == 401
    assert (await client.get("/capabilities", headers=headers(keys_only))).status_code == 403
    assert (await invoke(client, reader, "memory_write", {"path": "/r.md", "content": "x"})).status_code == 404
    burst = [(await invoke(client, limited, "memory_ls", {"path": "/"})).status_code for _ in range(4)]
    assert burst == [200, 200, 429, 429]  # the injected clock stands still: one second's window
    assert (await client.delete(f"/api/keys/{key_id_of(revokee)}", headers=headers(manager))).status_code == 200
    assert (await invoke(client, revokee, "memory_ls", {"path": "/"})).status_code == 401
    listed = await mcp_call(env.app, good, "tools/call", {"name": "memory_ls", "arguments": {"path": "/"}})
    assert listed.status_code == 200 and not listed.json()["result"].get("isError")
    for name in ("made_up_1", "made_up_2"):
        unknown = await mcp_call(env.app, good, "tools/call", {"name": name, "arguments": {}})
        assert unknown.json()["result"]["isError"] is True

    async def streams_open() -> bool:
        return (await env.scrape())[1].get(("capgate_streams_open", frozenset({("kind", "execution_events")}))) == 1

    async with anyio.create_task_group() as tasks:
        tasks.start_soon(invoke, client, streamer, "wait_at_gate")
        await until(lambda: _started())
        execution_id = STARTED[0]
        events_url = f"/api/runtime/executions/{execution_id}/events"
        sse = {"accept": "text/event-stream"}
        tasks.start_soon(lambda: client.get(events_url, headers=headers(streamer, **sse)))
        await until(streams_open)
        terminated = await client.delete(
            f"/api/keys/{key_id_of(streamer)}", params={"terminateStreams": "true"}, headers=headers(manager)
        )
        assert terminated.json()["terminatedStreams"] == 2  # the event stream and the call it follows
    text, after = await env.scrape()

    decisions = "capgate_authz_decisions_total"
    # 3 writes, 2 admitted in the burst, the MCP call, the gate call and its event stream.
    assert delta(before, after, decisions, decision="allowed", reason="allowed") == 3 + 2 + 1 + 1 + 1
    for reason, count in [
        ("missing_api_key", 1),
        ("invalid_api_key", 1),
        ("insufficient_scope", 1),
        ("tool_not_granted", 1),
        ("rate_limited", 2),
        ("revoked_api_key", 1),
        ("unknown_tool", 2),
    ]:
        assert delta(before, after, decisions, decision="refused", reason=reason) == count, reason
    assert delta(before, after, "capgate_rate_limit_decisions_total", decision="refused", window="second") == 2
    assert delta(before, after, "capgate_rate_limit_decisions_total", decision="allowed", window="second") >= 9
    executions = "capgate_tool_executions_total"
    assert delta(before, after, executions, tool="memory_write", status="succeeded") == 3
    assert delta(before, after, executions, tool="memory_ls", status="succeeded") == 3
    assert delta(before, after, executions, tool="wait_at_gate", status="interrupted") == 1
    assert delta(before, after, "capgate_revocation_propagation_seconds_count") == 2
    assert delta(before, after, "capgate_streams_closed_total", reason="revoked_terminate") == 1
    assert after[("capgate_streams_open", frozenset({("kind", "execution_events")}))] == 0
    operation = "mcp_server_operation_duration_seconds_count"
    assert (
        delta(before, after, operation, mcp_method_name="tools/call", gen_ai_tool_name="memory_ls", error_type="") == 1
    )
    unknown_labels = {"mcp_method_name": "tools/call", "gen_ai_tool_name": "_unknown", "error_type": "tool_error"}
    assert delta(before, after, operation, **unknown_labels) == 2
    http = "http_server_request_duration_seconds_count"
    assert delta(before, after, http, route="/api/runtime/tools/{tool_name}", method="POST", status="200") == 5
    assert delta(before, after, http, route="/capabilities", method="GET", status="401") == 2
    assert delta(before, after, "capgate_argon2_verifications_total", result="ok") >= 1
    assert delta(before, after, "capgate_key_cache_requests_total", cache="verified", result="hit") >= 1
    bucket = (
        "mcp_server_operation_duration_seconds_bucket",
        frozenset(
            {("mcp_method_name", "tools/call"), ("gen_ai_tool_name", "memory_ls"), ("error_type", ""), ("le", "300.0")}
        ),
    )
    assert bucket in after  # the OpenTelemetry MCP bucket boundaries

    every_key = [manager, good, reader, limited, revokee, streamer, keys_only, env.operator]
    for key in every_key:
        assert key_id_of(key) not in text and key not in text
    assert "cg_live_" not in text and "cg_test_" not in text
    label_values = {value for (_name, labels) in after for _label, value in labels}
    assert not {value for value in label_values if re.search(r"(ses|exe|wrk)_[A-Za-z0-9]", value)}
    assert not {value for value in label_values if "made_up" in value}
    organizations = {dict(labels)["organization"] for (name, labels) in after if "organization" in dict(labels)}
    assert len(organizations - {"other"}) <= 1  # metrics_max_organizations=1
    routes = {dict(labels)["route"] for (name, labels) in after if "route" in dict(labels)}
    assert all(route.startswith("/") or route == "unmatched" for route in routes)
    assert not any(execution_id in route for route in routes)


async def _started() -> bool:
    return bool(STARTED)


def test_the_grafana_dashboard_queries_only_metrics_capgate_exports() -> None:
    import json

    from server.observability.metrics import Metrics

    dashboard = json.loads((Path(__file__).parents[2] / "deploy" / "grafana-dashboard.json").read_text())
    exported = {metric.name for metric in Metrics().registry.collect()}
    queried = {
        re.sub(r"_(bucket|count|sum|total)$", "", name)
        for panel in dashboard["panels"]
        for target in panel["targets"]
        for name in re.findall(r"\b((?:capgate|mcp_server|http_server)_[a-z_]+)\b", target["expr"])
    }
    titles = {panel["title"] for panel in dashboard["panels"]}
    assert {"Refusals by reason", "Revocation propagation p50 / p99", "Open streams"} <= titles
    assert queried and queried <= {re.sub(r"_total$", "", name) for name in exported}, queried - exported


async def test_metrics_bind_serves_the_metrics_without_a_key(tmp_path: Path) -> None:
    from tests.e2e.harness import free_port

    port = free_port()
    settings = make_settings(tmp_path, f"sqlite+aiosqlite:///{tmp_path / 'c.db'}", metrics_bind=f"127.0.0.1:{port}")
    await migrate(settings.resolved_database_url)
    app = create_app(settings)
    async with LifespanManager(app), httpx.AsyncClient(transport=httpx.ASGITransport(app=app)) as local:
        assert (await local.get("http://capgate.test/capabilities")).status_code == 401
        async with httpx.AsyncClient() as http:
            scraped = await http.get(f"http://127.0.0.1:{port}/metrics")
        assert scraped.status_code == 200
        assert 'capgate_authz_decisions_total{decision="refused",reason="missing_api_key"} 1.0' in scraped.text
        assert (await local.get("http://capgate.test/metrics")).status_code == 401  # the main port still wants a key


async def test_client_chosen_methods_and_tool_names_do_not_grow_the_label_sets(env: Env) -> None:
    key = await env.keys.key(await env.keys.organization())
    for n in range(5):
        await env.client.request(f"BREW{n}", "/capabilities", headers=headers(key))
        await mcp_call(env.app, key, "tools/call", {"name": f"invented_{n}", "arguments": {}})
    text, samples = await env.scrape()
    methods = {dict(labels).get("method") for (name, labels) in samples if name.startswith("http_server_request")}
    assert "_OTHER" in methods and not any(m and m.startswith("BREW") for m in methods)
    assert "invented_" not in text
