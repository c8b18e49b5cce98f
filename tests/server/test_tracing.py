"""Traces: MCP server spans with the semantic conventions, parented by params._meta, with capgate's decision."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from asgi_lifespan import LifespanManager
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from starlette.applications import Starlette

from server.app import create_app
from tests.conftest import migrate
from tests.helpers import KeyFactory, factory_for, make_settings
from tests.server.mcp_raw import mcp_call

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_ID = "00f067aa0ba902b7"
TRACEPARENT = f"00-{TRACE_ID}-{PARENT_ID}-01"
EXPORTER = InMemorySpanExporter()


@pytest.fixture(scope="module", autouse=True)
def tracer_provider() -> Iterator[None]:
    """One SDK provider for the process (OpenTelemetry allows setting it once), exporting to memory."""
    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):
        provider = TracerProvider()
        trace.set_tracer_provider(provider)
    provider.add_span_processor(SimpleSpanProcessor(EXPORTER))
    yield
    EXPORTER.clear()


@pytest.fixture
async def app(tmp_path: Path) -> AsyncIterator[Starlette]:
    EXPORTER.clear()
    settings = make_settings(tmp_path, f"sqlite+aiosqlite:///{tmp_path / 'c.db'}")
    await migrate(settings.resolved_database_url)
    application = create_app(settings)
    async with LifespanManager(application):
        yield application


@pytest.fixture
def keys(app: Starlette) -> KeyFactory:
    return factory_for(app)


def spans_named(prefix: str) -> list[ReadableSpan]:
    return [span for span in EXPORTER.get_finished_spans() if span.name.startswith(prefix)]


def children_of(parent: ReadableSpan) -> list[ReadableSpan]:
    parent_id = parent.context.span_id
    return [
        span for span in EXPORTER.get_finished_spans() if span.parent is not None and span.parent.span_id == parent_id
    ]


async def test_tools_call_with_traceparent_in_meta_is_a_child_server_span(app: Starlette, keys: KeyFactory) -> None:
    key = await keys.key(await keys.organization())
    arguments = {"path": "/notes/a.md", "content": "hello"}
    response = await mcp_call(
        app, key, "tools/call", {"name": "memory_write", "arguments": arguments}, meta={"traceparent": TRACEPARENT}
    )
    assert response.status_code == 200 and not response.json()["result"].get("isError"), response.text
    [span] = spans_named("tools/call memory_write")
    assert span.kind == trace.SpanKind.SERVER
    assert format(span.context.trace_id, "032x") == TRACE_ID
    assert span.parent is not None and format(span.parent.span_id, "016x") == PARENT_ID
    attributes = dict(span.attributes or {})
    assert attributes["mcp.method.name"] == "tools/call"
    assert attributes["mcp.protocol.version"] == "2026-07-28"
    assert attributes["gen_ai.tool.name"] == "memory_write"
    assert attributes["gen_ai.operation.name"] == "execute_tool"
    assert attributes["jsonrpc.request.id"] == "1"
    assert attributes["capgate.decision"] == "allowed"
    assert attributes["capgate.key_id"] == key[8:20]
    assert attributes["capgate.policy_revision"] == 1
    assert str(attributes["capgate.organization_id"]).startswith("org_")
    children = {child.name for child in children_of(span)}
    assert {"capgate.tool memory_write", "capgate.record_write"} <= children
    tool_span = spans_named("capgate.tool memory_write")[0]
    assert "capgate.tool.arguments" not in (tool_span.attributes or {})  # only with otel_record_tool_io


async def test_the_http_request_has_a_server_span_from_headers_with_auth_and_rate_limit_children(
    app: Starlette, keys: KeyFactory
) -> None:
    key = await keys.key(await keys.organization())
    response = await mcp_call(app, key, "tools/list", headers={"traceparent": TRACEPARENT})
    assert response.status_code == 200
    [http_span] = spans_named("POST /mcp")
    assert http_span.kind == trace.SpanKind.SERVER
    assert http_span.parent is not None and format(http_span.parent.span_id, "016x") == PARENT_ID
    assert (http_span.attributes or {})["http.response.status_code"] == 200
    assert {"capgate.auth", "capgate.rate_limit"} <= {child.name for child in children_of(http_span)}
    [listing] = spans_named("tools/list")
    assert listing.parent is not None and listing.parent.span_id == http_span.context.span_id
    assert response.headers["x-request-id"]


async def test_a_refused_tool_call_yields_a_span_with_the_decision(app: Starlette, keys: KeyFactory) -> None:
    key = await keys.key(await keys.organization(), scopes=["runtime:read"])
    arguments = {"path": "/a.md", "content": "x"}
    response = await mcp_call(
        app, key, "tools/call", {"name": "memory_write", "arguments": arguments}, meta={"traceparent": TRACEPARENT}
    )
    assert response.json()["result"]["isError"] is True
    [span] = spans_named("tools/call memory_write")
    attributes = dict(span.attributes or {})
    assert attributes["capgate.decision"] == "refused"
    assert attributes["capgate.reason"] == "tool_not_granted"
    assert "runtime:read lacks write" in str(attributes["capgate.rule"])
    assert attributes["error.type"] == "tool_error"


async def test_a_refused_credential_yields_a_request_span_with_the_decision(app: Starlette) -> None:
    response = await mcp_call(app, None, "tools/list", headers={"traceparent": TRACEPARENT})
    assert response.status_code == 401
    [span] = spans_named("POST /mcp")
    attributes = dict(span.attributes or {})
    assert attributes["capgate.decision"] == "refused"
    assert attributes["capgate.reason"] == "missing_api_key"
    assert attributes["http.response.status_code"] == 401
