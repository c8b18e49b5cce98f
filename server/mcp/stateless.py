"""A native answer to the stateless (2026-07-28) ``tools/list`` and ``tools/call`` requests that need nothing else.

The SDK's single-exchange entry builds, for every request, a ``Request``, a body-limit buffer, a
``Connection`` with its exit stack (closed under a shielded timeout), a ``ServerRunner`` and a
``ServerSession``, a task group with a memory stream for the SSE deferral, and it validates and
re-serializes the result through the per-version models. Under tools/call load that machinery was
over half of capgate's CPU per call (bench/results/mcp_calls.md). This path makes the same exchange
for the common, well-formed request: the SDK's own checks (Host/Origin/Content-Type, Accept,
duplicated routing headers, the envelope ladder, the per-version params validation), the same
handlers (``McpToolCalls``), the same metrics and decisions, a JSON answer — or, after
15 s of silence, the SDK's SSE answer with keepalive pings — and a client that
disconnects cancels the call.

Anything else goes to the SDK with the body handed back: a progress token (progress needs the SSE
stream), ``Mcp-Param-*`` headers or a tool whose schema declares one, an installed tracer (the SDK
opens the MCP span), an envelope the SDK would refuse or that the checks above cannot vouch for.
``tests/server/test_mcp_fast_path.py`` sends the same requests down both paths and compares them.
"""

from __future__ import annotations

import json
from typing import Any

from mcp.server import Server
from mcp.server.streamable_http import check_accept_headers
from mcp.server.transport_security import TransportSecurityMiddleware, TransportSecuritySettings
from mcp.shared.inbound import InboundModernRoute, classify_inbound_request
from mcp.shared.inbound import find_duplicated_routing_header as duplicated_routing_header
from mcp.shared.jsonrpc_dispatcher import progress_token_from_params
from mcp_types import SERVER_INFO_META_KEY, CallToolRequestParams
from mcp_types import methods as mcp_methods
from mcp_types.version import MODERN_PROTOCOL_VERSIONS
from pydantic import ValidationError
from starlette.requests import Request
from starlette.types import Receive, Scope, Send

from auth.principal import Principal
from server.mcp.exchange import Answer, Exchange, encode
from server.mcp.forwarding import replaying
from server.mcp.tool_calls import McpToolCalls
from server.observability.mcp import TOOLS_CALL, McpObservation
from server.observability.observed import observed
from server.observability.tracing import tracing_installed
from server.routes.bodies import read_body

TOOLS_LIST = "tools/list"
FAST_METHODS = frozenset({TOOLS_LIST, TOOLS_CALL})
MCP_PARAM_PREFIX = b"mcp-param-"
ENVELOPE_KEYS = frozenset({"jsonrpc", "id", "method", "params"})


def wants_fast_path(scope: Scope, max_body: int) -> str | None:
    """The method to answer natively, judged from the headers alone; None sends the request to the SDK."""
    if scope["method"] != "POST":
        return None
    method = version = length = None
    for name, value in scope["headers"]:
        if name == b"mcp-method":
            method = value
        elif name == b"mcp-protocol-version":
            version = value
        elif name == b"content-length":
            length = value
        elif name == b"mcp-session-id" or name.startswith(MCP_PARAM_PREFIX):
            return None
    if method is None or version is None or version.decode("latin-1") not in MODERN_PROTOCOL_VERSIONS:
        return None
    if length is None or not length.isdigit() or int(length) > max_body or tracing_installed():
        return None
    chosen = method.decode("latin-1")
    return chosen if chosen in FAST_METHODS else None


class StatelessFastPath:
    def __init__(
        self,
        server: Server[Any],
        calls: McpToolCalls,
        security: TransportSecuritySettings | None,
        *,
        max_body_bytes: int,
    ) -> None:
        self.calls = calls
        self.security = TransportSecurityMiddleware(security)
        self.max_body = max_body_bytes
        self.observation = next(m for m in server.middleware if isinstance(m, McpObservation))
        self.server_info = server.server_info_stamp  # static per server; serialized into each answer, never mutated
        self._declares_headers: dict[str, bool] = {}
        self._listings: dict[tuple[str, tuple[str, ...]], tuple[tuple[object, ...], bytes]] = {}
        if server.cache_hints:  # the SDK would fold these into results; this path does not
            raise ValueError("the stateless fast path does not apply cache hints")

    async def __call__(
        self, method: str, principal: Principal, disabled: frozenset[str], scope: Scope, receive: Receive, send: Send
    ) -> Receive | None:
        """Answers the request (None), or hands back the ``receive`` with which the SDK must answer it."""
        request = Request(scope, receive)
        if await self.security.validate_request(request, is_post=True) is not None:
            return receive
        has_json, has_sse = check_accept_headers(request)
        if not (has_json and has_sse) or duplicated_routing_header(request.headers.items()) is not None:
            return receive
        body = await read_body(request, self.max_body)  # Content-Length was checked: this never raises
        envelope = self._envelope(body, method, request)
        if envelope is None:
            return replaying(body, receive)
        request_id, params, version = envelope
        if method == TOOLS_LIST:
            answer = self._listing(principal, disabled, version)
        else:
            call = self._call_params(params)
            if call is None:
                return replaying(body, receive)
            answer = self._call(principal, disabled, call, scope)
        await Exchange(method, request_id, params, scope, receive, send).answer_with(answer, self.observation)
        return None

    def _envelope(self, body: bytes, method: str, request: Request) -> tuple[Any, dict[str, Any], str] | None:
        try:
            decoded = json.loads(body)
        except (ValueError, RecursionError):
            return None
        if not isinstance(decoded, dict) or not ENVELOPE_KEYS.issuperset(decoded) or decoded.get("jsonrpc") != "2.0":
            return None
        request_id, params = decoded.get("id"), decoded.get("params")
        if isinstance(request_id, bool) or not isinstance(request_id, int | str) or decoded.get("method") != method:
            return None
        if not isinstance(params, dict) or progress_token_from_params(params) is not None:
            return None
        verdict = classify_inbound_request(decoded, headers=dict(request.headers))
        if not isinstance(verdict, InboundModernRoute):
            return None
        try:
            mcp_methods.validate_client_request(method, verdict.protocol_version, params)
        except (KeyError, ValidationError):
            return None
        return request_id, params, verdict.protocol_version

    def _call_params(self, params: dict[str, Any]) -> CallToolRequestParams | None:
        try:
            call = CallToolRequestParams.model_validate(params, by_name=False)
        except ValidationError:
            return None
        return None if self._tool_declares_headers(call.name) else call

    def _tool_declares_headers(self, name: str) -> bool:
        """A tool with ``x-mcp-header`` parameters has its headers checked by the SDK, against the caller's listing."""
        declares = self._declares_headers.get(name)
        if declares is None:
            tool = self.calls.runtime.tools.get(name)
            declares = tool is not None and "x-mcp-header" in json.dumps(tool.parameters)
            if tool is not None:
                self._declares_headers[name] = declares
        return declares

    def _stamped(self, result: dict[str, Any]) -> dict[str, Any]:
        result.setdefault("resultType", "complete")
        meta = result.get("_meta")
        result["_meta"] = (
            {**meta, SERVER_INFO_META_KEY: self.server_info} if meta else {SERVER_INFO_META_KEY: self.server_info}
        )
        return result

    def _listing(self, principal: Principal, disabled: frozenset[str], version: str) -> Answer:
        async def answer() -> tuple[bytes, bool]:
            listing = await self.calls.listing(principal, disabled)
            names = tuple(tool.name for tool in listing.tools)
            cached = self._listings.get((version, names))
            if cached is not None and all(a is b for a, b in zip(cached[0], listing.tools, strict=True)):
                return cached[1], False
            dumped = listing.model_dump(by_alias=True, mode="json", exclude_none=True)
            encoded = encode(self._stamped(mcp_methods.serialize_server_result(TOOLS_LIST, version, dumped)))
            if len(self._listings) >= 1024:  # bounded: one entry per distinct (version, visible list)
                self._listings.clear()
            self._listings[(version, names)] = (tuple(listing.tools), encoded)
            return encoded, False

        return answer

    def _call(
        self, principal: Principal, disabled: frozenset[str], call: CallToolRequestParams, scope: Scope
    ) -> Answer:
        async def answer() -> tuple[bytes, bool]:
            result = await self.calls.call(
                principal,
                call.name,
                dict(call.arguments or {}),
                disabled=disabled,
                observation=observed(scope),
                on_progress=None,  # no progress token: the SDK would drop progress too
            )
            dumped = result.model_dump(by_alias=True, mode="json", exclude_none=True)
            dumped.setdefault("isError", False)
            return encode(self._stamped(dumped)), bool(result.is_error)

        return answer
